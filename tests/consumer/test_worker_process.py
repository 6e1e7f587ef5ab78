"""A worker process on RabbitMQ: SIGTERM mid-stage releases the lease and gives the message back, and the
next worker claims it at once.

The real web server (``live_api``) publishes to the in-process broker; the test forwards its request to
RabbitMQ, where the worker process consumes it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shared.stage_handler import StageJob, StageOutput, WorkerSpec
from shared.worker_client import WorkerClient
from shared.worker_loop import Worker
from tests.consumer.conftest import TOKEN, LiveApi

WAIT_S = 20.0

WORKER_SCRIPT = """
import sys, time
from pathlib import Path
from shared.broker.rabbitmq import RabbitMQBroker
from shared.stage_handler import WorkerSpec
from shared.worker_process import run_worker_process
from shared.settings import Settings

url, prefix, server_url, token, data_dir = sys.argv[1:6]

def endless(job):
    print("running", job.inputs["input"].name, flush=True)
    while True:
        job.on_progress(0.3, "working")
        time.sleep(0.05)

settings = Settings(mode="local", server_url=server_url, worker_token=token, data_dir=Path(data_dir), amqp_url=url)
broker = RabbitMQBroker(url, prefix=prefix)
sys.exit(run_worker_process(WorkerSpec("sfm", ("input",), endless), settings, broker=broker))
"""


@pytest.mark.service
def test_sigterm_mid_stage_releases_the_lease_requeues_the_message_and_the_next_worker_claims_it(
    live_api: LiveApi, rabbitmq_url: str, rabbitmq_prefix: str, tmp_path: Path
) -> None:
    from shared.broker.rabbitmq import RabbitMQBroker

    job_id = live_api.submit()
    broker = RabbitMQBroker(rabbitmq_url, prefix=rabbitmq_prefix)
    broker.declare()
    request = live_api.request(job_id, "sfm")
    broker.publish("sfm", request.to_bytes(), message_id=request.message_id)

    args = [rabbitmq_url, rabbitmq_prefix, live_api.url, TOKEN, str(tmp_path / "data")]
    child = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "running input.mp4"
        child.send_signal(signal.SIGTERM)
        assert child.wait(WAIT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
    sfm = live_api.stage(job_id, "sfm")
    assert (sfm.status, sfm.attempt, sfm.lease_id) == ("queued", 0, None)  # released: the grant was returned
    assert sfm.error is None and sfm.last_error is None  # nothing reported
    assert broker.message_count("sfm") == 1  # given back, not acked, not dead-lettered
    assert list((tmp_path / "data" / "scratch" / "sfm").iterdir()) == []

    def quick(job: StageJob) -> StageOutput:
        job.out_dir.mkdir()
        (job.out_dir / "report.json").write_text("{}")
        return StageOutput(artifacts={"report-sfm.json": job.out_dir / "report.json"})

    stop = threading.Event()
    with WorkerClient(live_api.url, TOKEN) as client:
        worker = Worker(
            WorkerSpec("sfm", ("input",), quick), broker, client, worker_id="next", scratch_root=tmp_path / "s"
        )
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while live_api.stage(job_id, "sfm").status != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(WAIT_S)
    sfm = live_api.stage(job_id, "sfm")
    assert (sfm.status, sfm.attempt, sfm.worker_id) == ("succeeded", 1, "next")
    assert [a.name for a in sfm.artifacts] == ["report-sfm.json"]
    assert broker.message_count("sfm") == 0
    broker.close()
