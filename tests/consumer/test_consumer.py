"""The consumer loop against the real web server (served over HTTP) and the in-process broker.

Every test submits a real job: the server publishes the ``sfm`` request, a worker consumes it, and
the assertions read the job document the server keeps (stage status, attempt, lease, error,
artifacts), so a worker call the server refused or never received shows up as a wrong state.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from shared.broker import Delivery, MemoryBroker
from shared.errors import Cancelled, ErrorCode, StageError
from shared.messages import StageRequest
from shared.stage_handler import StageHandler, StageJob, StageOutput, WorkerSpec
from shared.worker_api import ClaimRequest
from shared.worker_client import WorkerClient
from shared.worker_loop import Worker
from shared.worker_process import WorkerPool
from tests.consumer.conftest import HEARTBEAT_S, TOKEN, LiveApi
from tests.fixtures.capture import poor_capture_report
from web_server.store import utcnow

WAIT_S = 30.0


class RecordingDelivery(Delivery):
    """A delivery of ``request`` that records how it was settled and the stage's stored status at that moment."""

    def __init__(self, api: LiveApi, request: StageRequest, *, redelivered: bool = False) -> None:
        super().__init__(request.stage, request.to_bytes(), request.message_id, redelivered)
        self._api = api
        self._request = request
        self.outcomes: list[tuple[str, str]] = []

    def _record(self, how: str) -> None:
        self.outcomes.append((how, self._api.stage(self._request.job_id, self._request.stage).status))

    def _ack(self) -> None:
        self._record("ack")

    def _requeue(self) -> None:
        self._record("requeue")

    def _dead_letter(self) -> None:
        self._record("dead-letter")


def copying_handler(job: StageJob) -> StageOutput:
    """A stage that reports progress and writes two files derived from its input."""
    video = job.inputs["input"]
    job.out_dir.mkdir(parents=True)
    for i in range(3):
        job.on_progress(i / 3, f"step {i}")
    (job.out_dir / "scene.bin").write_bytes(video.read_bytes()[::-1])
    (job.out_dir / "report.json").write_text('{"frames_registered": 42}')
    return StageOutput(
        artifacts={"sfm.tar": job.out_dir / "scene.bin", "report-sfm.json": job.out_dir / "report.json"},
        metrics={"frames_registered": 42},
    )


def make_worker(
    url: str,
    tmp_path: Path,
    handler: StageHandler = copying_handler,
    *,
    worker_id: str = "test-worker",
    retry_for_s: float | None = None,
) -> Worker:
    """A worker of the ``sfm`` stage talking to ``url`` (its broker is never consumed: tests call ``handle``)."""
    return Worker(
        WorkerSpec(stage="sfm", inputs=("input",), handler=handler),
        MemoryBroker(),
        WorkerClient(url, TOKEN) if retry_for_s is None else WorkerClient(url, TOKEN, retry_for_s=retry_for_s),
        worker_id=worker_id,
        scratch_root=tmp_path / "scratch",
        heartbeat_s=HEARTBEAT_S,
    )


def wait_for(condition: object, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition()`` until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_successful_stage_uploads_its_artifacts_reports_and_acks(live_api: LiveApi, tmp_path: Path) -> None:
    job_id = live_api.submit()
    spec = WorkerSpec(stage="sfm", inputs=("input",), handler=copying_handler)
    pool = WorkerPool(
        [spec], live_api.broker, live_api.url, TOKEN, tmp_path / "scratch", heartbeat_s=HEARTBEAT_S
    ).start()
    try:
        wait_for(lambda: live_api.stage(job_id, "sfm").status == "succeeded")
    finally:
        pool.stop()
    sfm = live_api.stage(job_id, "sfm")
    assert [a.name for a in sfm.artifacts] == ["sfm.tar", "report-sfm.json"]
    assert sfm.metrics["frames_registered"] == 42 and sfm.metrics["worker_seconds"] > 0
    assert sfm.attempt == 1 and sfm.worker_id is not None and sfm.worker_id.endswith(":sfm-0")
    assert (sfm.message, sfm.progress) == ("done", 1.0)
    assert live_api.artifact(job_id, "sfm.tar") == live_api.video[::-1]  # the fetched input, reversed
    assert live_api.artifact(job_id, "report-sfm.json") == b'{"frames_registered": 42}'
    assert live_api.stage(job_id, "gs").status == "queued"  # the server moved the job on
    assert live_api.broker.message_count("sfm") == 0 and live_api.broker.drain_dead_letters("sfm") == []
    assert list((tmp_path / "scratch" / "sfm").iterdir()) == []  # the job's scratch folder is gone
    assert pool.errors == []


def test_result_is_recorded_by_the_server_before_the_message_is_acked(live_api: LiveApi, tmp_path: Path) -> None:
    job_id = live_api.submit()
    delivery = RecordingDelivery(live_api, live_api.request(job_id, "sfm"))
    make_worker(live_api.url, tmp_path).handle(delivery)
    assert delivery.outcomes == [("ack", "succeeded")]


def test_redelivered_message_of_a_stage_a_live_worker_holds_is_acked_and_dropped_without_running(
    live_api: LiveApi, tmp_path: Path
) -> None:
    job_id = live_api.submit()
    request = live_api.request(job_id, "sfm")
    with WorkerClient(live_api.url, TOKEN) as holder:
        claim = ClaimRequest(message_id=request.message_id, attempt=1, worker_id="holder")
        lease = holder.claim(job_id, "sfm", claim)
    ran = threading.Event()

    def handler(job: StageJob) -> StageOutput:
        ran.set()
        return copying_handler(job)

    delivery = RecordingDelivery(live_api, request, redelivered=True)
    make_worker(live_api.url, tmp_path, handler).handle(delivery)
    assert delivery.outcomes == [("ack", "running")]
    assert not ran.is_set()
    sfm = live_api.stage(job_id, "sfm")
    assert (sfm.worker_id, sfm.lease_id, sfm.attempt) == ("holder", lease.lease_id, 1)  # untouched


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        (
            StageError(ErrorCode.TOO_FEW_FRAMES_REGISTERED, "COLMAP registered 4 of 60 frames"),
            "TOO_FEW_FRAMES_REGISTERED",
            False,
        ),
        (StageError(ErrorCode.OUT_OF_MEMORY, "CUDA out of memory"), "OUT_OF_MEMORY", True),
        (ZeroDivisionError("division by zero"), "INTERNAL", True),
    ],
)
def test_failed_stage_is_reported_with_its_code_and_retryability_then_acked(
    live_api: LiveApi, tmp_path: Path, error: Exception, code: str, retryable: bool
) -> None:
    def failing(job: StageJob) -> StageOutput:
        job.out_dir.mkdir()
        (job.out_dir / "partial.bin").write_bytes(b"half done")
        raise error

    job_id = live_api.submit()
    delivery = RecordingDelivery(live_api, live_api.request(job_id, "sfm"))
    make_worker(live_api.url, tmp_path, failing).handle(delivery)
    sfm = live_api.stage(job_id, "sfm")
    if retryable:  # the server queues the next attempt and publishes its request
        assert delivery.outcomes == [("ack", "queued")]
        recorded = sfm.last_error
        assert live_api.request(job_id, "sfm").attempt == 2
    else:
        assert delivery.outcomes == [("ack", "failed")]
        recorded = sfm.error
        assert live_api.job(job_id).status == "failed"
    assert recorded is not None and (recorded.code, recorded.retryable) == (code, retryable)
    assert str(error) in recorded.message
    assert list((tmp_path / "scratch").iterdir()) == []


def test_cancellation_seen_by_a_heartbeat_stops_the_handler_and_the_message_is_acked(
    live_api: LiveApi, tmp_path: Path
) -> None:
    job_id = live_api.submit()
    stopped_by: list[BaseException] = []
    cancelled_at: list[float] = []

    def endless(job: StageJob) -> StageOutput:
        job.on_progress(0.1, "training")
        live_api.cancel(job_id)  # the user cancels while the stage runs
        cancelled_at.append(time.monotonic())
        deadline = time.monotonic() + WAIT_S
        try:
            while time.monotonic() < deadline:
                job.on_progress(0.5, "training")
                time.sleep(0.02)
        except Cancelled as exc:
            stopped_by.append(exc)
            raise
        raise AssertionError("the handler was never cancelled")

    delivery = RecordingDelivery(live_api, live_api.request(job_id, "sfm"))
    make_worker(live_api.url, tmp_path, endless).handle(delivery)
    assert len(stopped_by) == 1
    assert time.monotonic() - cancelled_at[0] < 10.0  # at the next heartbeat (every 0.2 s)
    assert delivery.outcomes == [("ack", "cancelled")]
    sfm = live_api.stage(job_id, "sfm")
    assert sfm.error is not None and (sfm.error.code, sfm.error.retryable) == ("CANCELLED", False)
    assert live_api.job(job_id).status == "cancelled"
    assert list((tmp_path / "scratch").iterdir()) == []


def test_lease_taken_over_by_another_worker_stops_the_handler_and_drops_the_message_unreported(
    live_api: LiveApi, tmp_path: Path
) -> None:
    """The reaper expires the lease; another worker claims the retry; the first learns it at its heartbeat."""
    job_id = live_api.submit()
    first = live_api.request(job_id, "sfm")
    taken_over: list[str] = []

    def take_over() -> None:
        lease_s = live_api.server.settings.lease_s
        report = live_api.server.orchestrator.reap(utcnow() + timedelta(seconds=lease_s + 1))
        assert report.requeued == [job_id]
        retry = live_api.request(job_id, "sfm")
        assert retry.attempt == 2
        with WorkerClient(live_api.url, TOKEN) as other:
            claim = ClaimRequest(message_id=retry.message_id, attempt=retry.attempt, worker_id="other-worker")
            taken_over.append(other.claim(job_id, "sfm", claim).lease_id)

    def endless(job: StageJob) -> StageOutput:
        take_over()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            job.on_progress(0.1, "working")
            time.sleep(0.02)
        raise AssertionError("the handler never noticed the lost lease")

    delivery = RecordingDelivery(live_api, first)
    make_worker(live_api.url, tmp_path, endless).handle(delivery)
    assert delivery.outcomes == [("ack", "running")]  # dropped: the stage runs on the other worker
    sfm = live_api.stage(job_id, "sfm")
    assert (sfm.status, sfm.worker_id, sfm.lease_id, sfm.attempt) == ("running", "other-worker", taken_over[0], 2)
    assert sfm.last_error is not None and sfm.last_error.code == "WORKER_LOST"
    assert sfm.error is None and sfm.metrics == {}  # the first worker reported nothing
    assert list((tmp_path / "scratch").iterdir()) == []


def test_poison_message_is_dead_lettered_and_the_worker_keeps_serving(live_api: LiveApi, tmp_path: Path) -> None:
    publish = MemoryBroker.publish  # past the recording broker, which parses what it records
    publish(live_api.broker, "sfm", b"{not json", message_id="poison")
    publish(live_api.broker, "sfm", b'{"job_id": "job-1", "stage": "sfm"}', message_id="no-attempt")
    job_id = live_api.submit()
    spec = WorkerSpec(stage="sfm", inputs=("input",), handler=copying_handler)
    with WorkerPool([spec], live_api.broker, live_api.url, TOKEN, tmp_path / "scratch", heartbeat_s=HEARTBEAT_S):
        wait_for(lambda: live_api.stage(job_id, "sfm").status == "succeeded")
    assert live_api.broker.drain_dead_letters("sfm") == [b"{not json", b'{"job_id": "job-1", "stage": "sfm"}']


def test_stopping_the_worker_mid_stage_releases_the_lease_and_gives_the_message_back(
    live_api: LiveApi, tmp_path: Path
) -> None:
    job_id = live_api.submit()
    running = threading.Event()

    def endless(job: StageJob) -> StageOutput:
        running.set()
        while True:
            job.on_progress(0.2, "working")
            time.sleep(0.02)

    spec = WorkerSpec("sfm", ("input",), endless)
    pool = WorkerPool(
        [spec], live_api.broker, live_api.url, TOKEN, tmp_path / "scratch", heartbeat_s=HEARTBEAT_S
    ).start()
    assert running.wait(WAIT_S)
    pool.stop(timeout_s=WAIT_S)
    sfm = live_api.stage(job_id, "sfm")
    assert (sfm.status, sfm.attempt, sfm.lease_id) == ("queued", 0, None)  # the grant was returned
    assert sfm.error is None and sfm.last_error is None
    assert live_api.broker.message_count("sfm") == 1  # requeued; the next claim says redelivered=True
    assert list((tmp_path / "scratch" / "sfm").iterdir()) == []


def test_unreachable_server_at_claim_gives_the_message_back(live_api: LiveApi, tmp_path: Path) -> None:
    job_id = live_api.submit()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: connections are refused
        delivery = RecordingDelivery(live_api, live_api.request(job_id, "sfm"))
        make_worker(closed, tmp_path, retry_for_s=0.5).handle(delivery)
    assert delivery.outcomes == [("requeue", "queued")]


def test_upload_the_server_refuses_is_reported_as_a_retryable_internal_failure(
    live_api: LiveApi, tmp_path: Path
) -> None:
    def wrong_name(job: StageJob) -> StageOutput:
        job.out_dir.mkdir()
        (job.out_dir / "scene.ply").write_bytes(b"ply")
        return StageOutput(artifacts={"scene.ply": job.out_dir / "scene.ply"})  # a gs artifact, not sfm's

    job_id = live_api.submit()
    delivery = RecordingDelivery(live_api, live_api.request(job_id, "sfm"))
    make_worker(live_api.url, tmp_path, wrong_name).handle(delivery)
    sfm = live_api.stage(job_id, "sfm")
    assert delivery.outcomes == [("ack", "queued")]
    assert sfm.last_error is not None and (sfm.last_error.code, sfm.last_error.retryable) == ("INTERNAL", True)
    assert "422 INVALID_ARTIFACT_NAME" in sfm.last_error.message


def test_capture_report_goes_out_in_a_heartbeat_at_once_and_before_the_result(
    live_api_factory: object, tmp_path: Path
) -> None:
    api: LiveApi = live_api_factory(heartbeat_s=60.0)  # type: ignore[operator]  # no periodic heartbeat in the test
    job_id = api.submit()
    report = poor_capture_report()
    stored_while_running: list[bool] = []

    def judged_poor(job: StageJob) -> StageOutput:
        job.on_capture(report)
        deadline = time.monotonic() + WAIT_S
        while api.job(job_id).capture is None and time.monotonic() < deadline:
            time.sleep(0.02)
        stored_while_running.append(api.job(job_id).capture is not None)
        raise StageError(ErrorCode.POOR_CAPTURE, "The capture check judged this video poor.")

    worker = make_worker(api.url, tmp_path, judged_poor)
    worker.heartbeat_s = None  # the lease's 20 s period applies
    delivery = RecordingDelivery(api, api.request(job_id, "sfm"))
    worker.handle(delivery)
    assert stored_while_running == [True]  # not held back until the next period
    assert delivery.outcomes == [("ack", "failed")]
    job = api.job(job_id)
    assert job.capture == report.model_dump(mode="json")
    error = job.stages["sfm"].error
    assert error is not None and error.code == "POOR_CAPTURE"
