"""RabbitMQ down: the web server stays responsive and publishes later.

``/readyz`` answers 503 within a second, an upload is accepted (202) without waiting for the broker,
and once the broker is back the reaper publishes the job's sfm request and a worker claims it. Runs
its own stack on a private RabbitMQ node (the shared broker is never stopped).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import start_stack
from tests.e2e.stack import ServiceStack, tiny_options
from tests.fixtures.rabbitmq import PrivateRabbitMQ

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(600)]

#: ``/readyz`` must answer within this (the probe's own bound is 1 s; the rest is HTTP on a busy machine).
READY_BOUND_S = 1.5
#: An upload of the small test video, probe included, on a busy two-core machine.
UPLOAD_BOUND_S = 10.0


def _timed_readyz(stack: ServiceStack) -> tuple[int, float]:
    started = time.monotonic()
    status = httpx.get(f"{stack.url}/readyz", timeout=60.0).status_code
    return status, time.monotonic() - started


def test_broker_down_readyz_is_fast_uploads_are_accepted_and_published_when_it_returns(
    private_rabbitmq: PrivateRabbitMQ, e2e_mongo_url: str, e2e_video: Path, tmp_path: Path
) -> None:
    stack = ServiceStack(tmp_path, e2e_mongo_url, private_rabbitmq.url)
    go = tmp_path / "go"
    try:
        start_stack(stack, ())
        private_rabbitmq.stop()
        for _ in range(2):  # the first and a repeated check alike
            status, took = _timed_readyz(stack)
            assert status == 503 and took < READY_BOUND_S, (status, took, stack.logs())
        with stack.client() as client:
            started = time.monotonic()
            job = client.submit(e2e_video, preset="preview", options=tiny_options(), name="broker-down")
            took = time.monotonic() - started
            assert took < UPLOAD_BOUND_S, (took, stack.logs())
            assert job.status == "queued" and job.stage("sfm").status == "queued"
            status, took = _timed_readyz(stack)  # after a publish failed, too
            assert status == 503 and took < READY_BOUND_S, (status, took)

            private_rabbitmq.start()
            stack.start_held_sfm_worker(go)
            stack.wait_for(client, job.id, lambda j: j.stage("sfm").status == "running", timeout_s=120)
            status, _took = _timed_readyz(stack)
            assert status == 200
            go.touch()
            sfm = stack.wait_for(client, job.id, lambda j: j.stage("sfm").status != "running", timeout_s=60).stage(
                "sfm"
            )
        assert (sfm.status, sfm.attempt) == ("succeeded", 1), stack.logs()
    finally:
        stack.stop()
