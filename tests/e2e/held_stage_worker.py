"""A worker process whose sfm stage holds until the test says go: ``python -m tests.e2e.held_stage_worker``.

It is a real worker (settings from ``VID2SCENE_*``, the shared consumer loop, RabbitMQ, the worker
API) whose stage reports progress every 0.1 s until the file named by ``V2S_TEST_GO_FILE`` exists,
then succeeds with only ``report-sfm.json``. Tests use it to keep a lease alive for as long as they
need while they break something else (the broker).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from shared.artifacts import REPORT_FILE
from shared.settings import Settings
from shared.stage_handler import StageJob, StageOutput, WorkerSpec
from shared.worker_process import run_worker_process

GO_FILE_VARIABLE = "V2S_TEST_GO_FILE"


def held_stage(job: StageJob) -> StageOutput:
    """Report progress until the go file exists, then write the stage's report."""
    go = Path(os.environ[GO_FILE_VARIABLE])
    print(f"holding {job.request.job_id} attempt {job.lease.attempt}", flush=True)
    while not go.exists():
        job.on_progress(0.5, "holding")
        time.sleep(0.1)
    job.out_dir.mkdir(parents=True)
    report = job.out_dir / REPORT_FILE
    report.write_text(json.dumps({"held": True}))
    return StageOutput(artifacts={"report-sfm.json": report}, metrics={"held": True})


def main() -> int:
    """Run the held sfm worker until SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_worker_process(WorkerSpec("sfm", ("input",), held_stage), Settings().require_secrets("worker_token"))


if __name__ == "__main__":
    sys.exit(main())
