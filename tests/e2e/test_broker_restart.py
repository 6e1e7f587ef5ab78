"""A RabbitMQ restart in the middle of a job: the server and the workers reconnect and the job completes.

Runs its own stack on a private RabbitMQ node (the shared broker is never restarted).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
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
