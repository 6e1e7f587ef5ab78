"""A RabbitMQ restart in the middle of a job: the server and the workers reconnect and the job completes,
and the message the broker redelivers never takes a stage from a worker that is still alive.

Runs its own stack on a private RabbitMQ node (the shared broker is never restarted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import start_stack
from tests.e2e.stack import ServiceStack, tiny_options
from tests.fixtures.rabbitmq import PrivateRabbitMQ
from vid2scene.client import JobView

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def private_stack(private_rabbitmq: PrivateRabbitMQ, e2e_mongo_url: str, tmp_path: Path) -> Iterator[ServiceStack]:
    stack = start_stack(ServiceStack(tmp_path, e2e_mongo_url, private_rabbitmq.url), ("sfm", "gs"))
    try:
        yield stack
    finally:
        stack.stop()


def test_broker_restarted_mid_job_the_job_completes(
    private_stack: ServiceStack, private_rabbitmq: PrivateRabbitMQ, e2e_video: Path
) -> None:
    options = tiny_options(iterations=120)
    with private_stack.client() as client:
        job = client.submit(e2e_video, preset="preview", options=options, name="broker-restart")

        def sfm_started(j: JobView) -> bool:
            assert not j.done, j.failure_message()
            return j.stage("sfm").status in ("running", "succeeded")

        private_stack.wait_for(client, job.id, sfm_started, timeout_s=120)
        private_rabbitmq.stop()
        time.sleep(2.0)
        private_rabbitmq.start()
        final = client.wait(job.id, timeout_s=300, poll_s=0.5)
    assert final.status == "succeeded", f"{final.failure_message()}\n{private_stack.logs()}"
    assert {"scene.ply", "scene.splat", "flythrough-gs.mp4"} <= {a.name for a in final.artifacts}
    assert all(w.alive for w in private_stack.workers), private_stack.logs()


def _wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, stack: ServiceStack) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{stack.logs()}")
        time.sleep(0.2)


def test_broker_restart_never_lets_a_redelivered_message_take_a_live_lease(
    private_rabbitmq: PrivateRabbitMQ, e2e_mongo_url: str, e2e_video: Path, tmp_path: Path
) -> None:
    stack = ServiceStack(tmp_path, e2e_mongo_url, private_rabbitmq.url)
    go = tmp_path / "go"
    try:
        start_stack(stack, ())
        holder_candidates = [stack.start_held_sfm_worker(go), stack.start_held_sfm_worker(go)]
        with stack.client() as client:
            job = client.submit(e2e_video, preset="preview", options=tiny_options(), name="live-lease")
            running = stack.wait_for(client, job.id, lambda j: j.stage("sfm").status == "running", timeout_s=120)
            holder = running.stage("sfm").worker_id
            private_rabbitmq.stop()  # both consumers lose their connection; the message was never acked
            private_rabbitmq.start()
            _wait_until(
                lambda: any("ALREADY_CLAIMED" in w.log_tail(20_000) for w in holder_candidates),
                120,
                "the redelivered message to be refused",
                stack,
            )
            still = client.get(job.id).stage("sfm")
            assert (still.status, still.attempt, still.worker_id) == ("running", 1, holder), stack.logs()
            go.touch()  # the holder finishes its stage
            done = stack.wait_for(client, job.id, lambda j: j.stage("sfm").status != "running", timeout_s=120)
        sfm = done.stage("sfm")
        assert (sfm.status, sfm.attempt, sfm.worker_id) == ("succeeded", 1, holder), stack.logs()
        assert sfm.metrics.get("held") is True  # the first worker's result was recorded
    finally:
        stack.stop()
