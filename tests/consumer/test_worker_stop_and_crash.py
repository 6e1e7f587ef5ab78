"""Worker processes on RabbitMQ that must stop in time or clean up after a crash.

- SIGTERM while the server is unreachable: the process exits within its grace period and the
  message is back in the queue (the client's retry loops watch the stop event).
- SIGTERM while a stage never reaches a progress call: the process exits when the grace period
  runs out, and the broker requeues the message.
- SIGKILL mid-stage leaves a scratch folder; the next worker process started on the same data dir
  removes it before it serves.

The worker processes talk to the real web server (``live_api``), which publishes to the in-process
broker; the tests forward its request to RabbitMQ, where the processes consume it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.messages import StageRequest
from tests.consumer.conftest import TOKEN, LiveApi
from web_server.store import utcnow

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.service

GRACE_S = 8.0

#: A worker process running a test stage: ``endless`` reports progress for ever, ``stuck`` never
#: does, ``writer`` writes scratch files and then reports progress for ever.
WORKER_SCRIPT = """
import sys, time
from pathlib import Path
from shared.broker.rabbitmq import RabbitMQBroker
from shared.stage_handler import WorkerSpec
from shared.worker_process import run_worker_process
from shared.settings import Settings

url, prefix, server_url, data_dir, kind, grace = sys.argv[1:7]

def stage(job):
    if kind == "writer":
        (job.work_dir / "partial.bin").write_bytes(b"x" * 3_000_000)
    print("running", flush=True)
    while True:
        if kind != "stuck":
            job.on_progress(0.3, "working")
        time.sleep(0.05)

settings = Settings(
    mode="local", server_url=server_url, worker_token=sys.argv[7], data_dir=Path(data_dir), amqp_url=url,
    stop_grace_s=float(grace),
)
broker = RabbitMQBroker(url, prefix=prefix)
sys.exit(run_worker_process(WorkerSpec("sfm", ("input",), stage), settings, broker=broker))
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _publish_one(rabbitmq_url: str, prefix: str, request: StageRequest | None = None) -> object:
    """A RabbitMQ broker holding ``request`` (default: one for a job no server knows) in the sfm queue."""
    from shared.broker.rabbitmq import RabbitMQBroker

    broker = RabbitMQBroker(rabbitmq_url, prefix=prefix)
    broker.declare()
    request = request or StageRequest(job_id="job-1", stage="sfm", attempt=1)
    broker.publish("sfm", request.to_bytes(), message_id=request.message_id)
    return broker


def _wait_for_count(broker: object, expected: int, timeout_s: float = 15.0) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        count = broker.message_count("sfm")  # type: ignore[attr-defined]
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def _start_script(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _stop_within(child: subprocess.Popen[Any], timeout_s: float) -> tuple[int, float]:
    started = time.monotonic()
    child.send_signal(signal.SIGTERM)
    try:
        code = child.wait(timeout_s)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    return code, time.monotonic() - started


def test_sigterm_while_the_server_is_unreachable_exits_within_the_grace_period_and_requeues_the_message(
    rabbitmq_url: str, rabbitmq_prefix: str, tmp_path: Path
) -> None:
    broker = _publish_one(rabbitmq_url, rabbitmq_prefix)
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "VID2SCENE_MODE": "service",
        "VID2SCENE_AMQP_URL": rabbitmq_url,
        "VID2SCENE_QUEUE_PREFIX": rabbitmq_prefix,
        "VID2SCENE_SERVER_URL": f"http://127.0.0.1:{_closed_port()}",  # nothing listens there
        "VID2SCENE_WORKER_TOKEN": TOKEN,
        "VID2SCENE_DATA_DIR": str(tmp_path / "data"),
        "VID2SCENE_STOP_GRACE_S": str(GRACE_S),
    }
    with log_path.open("w") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "sfm_worker"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "retrying in" not in log_path.read_text():  # the claim is in its retry loop
            assert child.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        code, took = _stop_within(child, GRACE_S + 20)
    finally:
        if child.poll() is None:
            child.kill()
    assert code == 0, log_path.read_text()
    assert took < GRACE_S, f"stopped after {took:.1f} s\n{log_path.read_text()}"
    assert _wait_for_count(broker, 1) == 1  # given back, not acked, not dead-lettered
    broker.close()  # type: ignore[attr-defined]


def test_sigterm_while_a_stage_never_reaches_a_progress_call_exits_when_the_grace_period_ends(
    live_api: LiveApi, rabbitmq_url: str, rabbitmq_prefix: str, tmp_path: Path
) -> None:
    job_id = live_api.submit()
    broker = _publish_one(rabbitmq_url, rabbitmq_prefix, live_api.request(job_id, "sfm"))
    grace_s = 2.0
    child = _start_script(
        [rabbitmq_url, rabbitmq_prefix, live_api.url, str(tmp_path / "data"), "stuck", str(grace_s), TOKEN]
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "running"
    code, took = _stop_within(child, grace_s + 20)
    assert code == 1  # abandoned when the grace period ran out
    assert grace_s <= took < grace_s + 5
    assert _wait_for_count(broker, 1) == 1  # the broker took the unacknowledged message back
    sfm = live_api.stage(job_id, "sfm")
    assert (sfm.status, sfm.attempt) == ("running", 1)  # abandoned: the lease runs out, nothing was reported
    assert sfm.error is None and sfm.last_error is None
    broker.close()  # type: ignore[attr-defined]


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_scratch_left_by_a_worker_killed_mid_stage_is_removed_by_the_next_worker_process(
    live_api: LiveApi, rabbitmq_url: str, rabbitmq_prefix: str, tmp_path: Path
) -> None:
    job_id = live_api.submit()
    broker = _publish_one(rabbitmq_url, rabbitmq_prefix, live_api.request(job_id, "sfm"))
    data = tmp_path / "data"
    scratch = data / "scratch" / "sfm"
    args = [rabbitmq_url, rabbitmq_prefix, live_api.url, str(data), "writer", "5", TOKEN]
    first = _start_script(args)
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "running"
    (old_run,) = [p for p in scratch.iterdir() if p.is_dir()]
    assert _tree_bytes(old_run) >= 3_000_000  # the video and the partial output
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert old_run.exists()  # a killed process cleans nothing
    # The server's reaper notices the dead worker's lease ran out; only then may the redelivered
    # message be claimed (a live lease refuses it).
    later = utcnow() + timedelta(seconds=live_api.server.settings.lease_s + 1)
    assert live_api.server.orchestrator.reap(later).requeued == [job_id]

    second = _start_script(args)  # the same data dir: it gets the redelivered message too
    try:
        assert second.stdout is not None
        assert second.stdout.readline().strip() == "running"
        assert not old_run.exists() and not old_run.with_name(old_run.name + ".lock").exists()
        (new_run,) = [p for p in scratch.iterdir() if p.is_dir()]
        assert new_run != old_run
        assert _tree_bytes(scratch) == _tree_bytes(new_run)  # nothing else left
        sfm = live_api.stage(job_id, "sfm")
        assert (sfm.status, sfm.attempt) == ("running", 2)  # the redelivered message claimed the retry
        code, _took = _stop_within(second, 30)
        assert code == 0
    finally:
        if second.poll() is None:
            second.kill()
    assert list(scratch.iterdir()) == []  # a clean stop leaves nothing either
    broker.close()  # type: ignore[attr-defined]
