"""Schemathesis fuzzes every operation of ``/openapi.json`` on the running server: no answer is a 5xx.

Two runs: the public API with an API key, and the worker API with the worker token (so that both
get past authentication; the stack lists the worker API in its schema with
``VID2SCENE_OPENAPI_INTERNAL=true``). Job-id routes get real job ids and artifact names as well as
random ones (``tests/e2e/fuzz_hooks.py``): one job cancelled at once and one left to run, owned by
a key of the fuzzer's own. The ``coverage`` phase is left out: its generator crashes inside
hypothesis on this Python (``SystemError: AST constructor recursion depth mismatch``) — a tool
bug, not an answer of ours.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.e2e.fuzz_hooks import ARTIFACT_NAMES_ENV, JOB_IDS_ENV
from tests.e2e.stack import REPO_ROOT, ServiceStack, tiny_options
from tests.fixtures.executables import find_executable
from vid2scene.client import ServerError

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(400)]


@dataclass(frozen=True)
class RealJobs:
    """Jobs the fuzzer may name: their ids, the artifact names they have, and their owner's key."""

    api_key: str
    job_ids: tuple[str, ...]
    artifact_names: tuple[str, ...]


@pytest.fixture(scope="module")
def real_jobs(service: ServiceStack, e2e_video: Path) -> RealJobs:
    """Two jobs of a key made for the fuzzer: one cancelled at once, one left to run."""
    api_key = service.create_api_key("fuzzer")
    with service.client(api_key) as client:
        cancelled = client.submit(e2e_video, options=tiny_options())
        client.cancel(cancelled.id)
        running = client.submit(e2e_video, options=tiny_options())
    names = ("input.mp4", "sfm.tar", "scene.ply", "scene.splat", "flythrough-gs.mp4", "report-sfm.json")
    return RealJobs(api_key, (cancelled.id, running.id), names)


def _schemathesis(service: ServiceStack, token: str, path_regex: str, cwd: Path, real: RealJobs) -> str:
    st = find_executable("st")
    if st is None:
        skip_or_fail("schemathesis is not installed (pip install 'vid2scene[dev]')")
    run = subprocess.run(
        [
            st,
            "run",
            f"{service.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--include-path-regex",
            path_regex,
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            "8",
            "--seed",
            "1",
            "--workers",
            "1",
            "--max-time",
            "45",
            "--request-timeout",
            "20",
            "--generation-database",
            "none",
            "--header",
            f"Authorization: Bearer {token}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])),
            "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
            JOB_IDS_ENV: ",".join(real.job_ids),
            ARTIFACT_NAMES_ENV: ",".join(real.artifact_names),
        },
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"{output[-6000:]}\n{service.logs()}"
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts is not None and int(counts[1]) == int(counts[2]) > 0, output[-3000:]
    return output


def _paths_requested(service: ServiceStack) -> str:
    """The web server's log so far (its access log names every path requested)."""
    assert service.server is not None
    return service.server.log_path.read_text(errors="replace")


def _cancel_active_jobs(service: ServiceStack, api_key: str) -> None:
    """Cancel every queued or running job of the key: the runs the fuzzer started (``POST …/runs`` of a finished
    real job with any preset) would otherwise keep the shared stack's workers busy for the next tests."""
    with service.client(api_key) as client:
        for status in ("queued", "running"):
            while active := client.list(limit=100, status=status).jobs:
                for job in active:
                    try:
                        client.cancel(job.id)
                    except ServerError as exc:  # it ended meanwhile
                        assert exc.code == "JOB_FINISHED", exc


def test_fuzzed_public_api_requests_with_real_and_unknown_job_ids_never_get_a_server_error(
    service: ServiceStack, real_jobs: RealJobs, tmp_path: Path
) -> None:
    try:
        # The artifact routes first, on their own: in one time-boxed run over every route a busy machine may
        # run out of time before reaching them.
        _schemathesis(service, real_jobs.api_key, r"^/v1/jobs/\{[a-z_]+\}/artifacts/", tmp_path, real_jobs)
        log = _paths_requested(service)
        assert any(f"/v1/jobs/{job_id}/artifacts/" in log for job_id in real_jobs.job_ids)
        _schemathesis(service, real_jobs.api_key, r"^/(v1|healthz|readyz|metrics)", tmp_path, real_jobs)
        assert "/v1/jobs/" in _paths_requested(service)[len(log) :]
    finally:
        _cancel_active_jobs(service, real_jobs.api_key)


def test_fuzzed_worker_api_requests_with_real_and_unknown_job_ids_never_get_a_server_error(
    service: ServiceStack, real_jobs: RealJobs, tmp_path: Path
) -> None:
    _schemathesis(service, service.worker_token, r"^/internal/", tmp_path, real_jobs)
    log = _paths_requested(service)
    assert any(f"/internal/v1/jobs/{job_id}/" in log for job_id in real_jobs.job_ids)
