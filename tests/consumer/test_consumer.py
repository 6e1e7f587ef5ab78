"""The consumer loop against a real HTTP worker-API server and the in-process broker."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.broker import Delivery, MemoryBroker
from shared.consumer import StageJob, StageOutput, Worker, WorkerSpec, start_workers
from shared.errors import Cancelled, ErrorCode, StageError
from shared.messages import StageRequest
from shared.worker_client import WorkerClient
from tests.consumer.worker_api_server import TOKEN, WorkerApiServer
from tests.fixtures.capture import poor_capture_report

WAIT_S = 15.0
VIDEO = b"not really a video, but bytes to fetch" * 100


class RecordingDelivery(Delivery):
    """A delivery that writes how it was settled into the server's event log (shared ordering)."""

    def __init__(self, api: WorkerApiServer, body: bytes, *, redelivered: bool = False) -> None:
        super().__init__("sfm", body, "m-1", redelivered)
        self._api = api

    def _log(self, what: str) -> None:
        with self._api.lock:
            self._api.events.append(what)

    def _ack(self) -> None:
        self._log("ack")

    def _requeue(self) -> None:
        self._log("requeue")

    def _dead_letter(self) -> None:
        self._log("dead-letter")


@pytest.fixture
def api() -> Iterator[WorkerApiServer]:
    server = WorkerApiServer(heartbeat_s=0.2).start()
    server.inputs[("job-1", "input")] = VIDEO
    yield server
    server.stop()


def request(job_id: str = "job-1", attempt: int = 1) -> StageRequest:
    return StageRequest(job_id=job_id, stage="sfm", attempt=attempt)


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


def make_worker(api: WorkerApiServer, tmp_path: Path, handler=copying_handler, **client_kw) -> Worker:
    client = WorkerClient(api.url, TOKEN, **client_kw)
    return Worker(
        WorkerSpec(stage="sfm", inputs=("input",), handler=handler),
        MemoryBroker(),
        client,
        worker_id="test-worker",
        scratch_root=tmp_path / "scratch",
    )


def test_successful_stage_uploads_its_artifacts_reports_and_acks(api: WorkerApiServer, tmp_path: Path) -> None:
    broker = MemoryBroker()
    broker.declare()
    broker.publish("sfm", request().to_bytes(), message_id="m-1")
    spec = WorkerSpec(stage="sfm", inputs=("input",), handler=copying_handler)
    pool = start_workers([spec], broker, api.url, TOKEN, tmp_path / "scratch")
    try:
        deadline = time.monotonic() + WAIT_S
        while not api.stage("job-1", "sfm").results and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pool.stop()
    state = api.stage("job-1", "sfm")
    assert [r.status for r in state.results] == ["succeeded"]
    result = state.results[0]
    assert result.artifacts == ["sfm.tar", "report-sfm.json"]
    assert result.metrics["frames_registered"] == 42
    assert state.artifacts["sfm.tar"] == VIDEO[::-1]
    assert (
        hashlib.sha256(state.artifacts["report-sfm.json"]).hexdigest()
        == hashlib.sha256(b'{"frames_registered": 42}').hexdigest()
    )
    assert state.claims[0].worker_id.endswith(":sfm-0") and state.claims[0].redelivered is False
    assert broker.message_count("sfm") == 0 and broker.drain_dead_letters("sfm") == []
    assert list((tmp_path / "scratch" / "sfm").iterdir()) == []  # the job's scratch folder is gone
    assert pool.errors == []


def test_result_is_accepted_by_the_server_before_the_message_is_acked(api: WorkerApiServer, tmp_path: Path) -> None:
    worker = make_worker(api, tmp_path)
    worker.handle(RecordingDelivery(api, request().to_bytes()))
    assert api.events == ["claim 1", "artifact sfm.tar", "artifact report-sfm.json", "result succeeded", "ack"]


def test_stale_lease_on_claim_is_acked_and_dropped_without_running_the_stage(
    api: WorkerApiServer, tmp_path: Path
) -> None:
    api.stage("job-1", "sfm").refuse_claims = "STALE_LEASE"
    ran = threading.Event()

    def handler(job: StageJob) -> StageOutput:
        ran.set()
        return copying_handler(job)

    make_worker(api, tmp_path, handler).handle(RecordingDelivery(api, request().to_bytes(), redelivered=True))
    assert api.events == ["claim refused STALE_LEASE", "ack"]
    assert api.stage("job-1", "sfm").claims[0].redelivered is True
    assert not ran.is_set()


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
    api: WorkerApiServer, tmp_path: Path, error: Exception, code: str, retryable: bool
) -> None:
    def failing(job: StageJob) -> StageOutput:
        job.out_dir.mkdir()
        (job.out_dir / "partial.bin").write_bytes(b"half done")
        raise error

    make_worker(api, tmp_path, failing).handle(RecordingDelivery(api, request().to_bytes()))
    result = api.stage("job-1", "sfm").results[0]
    assert result.status == "failed" and result.error is not None
    assert (result.error.code, result.error.retryable) == (code, retryable)
    assert str(error) in result.error.message
    assert api.events[-2:] == ["result failed", "ack"]
    assert list((tmp_path / "scratch").iterdir()) == []


def test_cancellation_seen_by_a_heartbeat_stops_the_handler_and_is_reported(
    api: WorkerApiServer, tmp_path: Path
) -> None:
    api.stage("job-1", "sfm").cancel_after_heartbeats = 2
    stopped_by: list[BaseException] = []

    def endless(job: StageJob) -> StageOutput:
        deadline = time.monotonic() + WAIT_S
        try:
            while time.monotonic() < deadline:
                job.on_progress(0.5, "training")
                time.sleep(0.02)
        except Cancelled as exc:
            stopped_by.append(exc)
            raise
        raise AssertionError("the handler was never cancelled")

    started = time.monotonic()
    make_worker(api, tmp_path, endless).handle(RecordingDelivery(api, request().to_bytes()))
    assert time.monotonic() - started < 3.0
    assert len(stopped_by) == 1
    result = api.stage("job-1", "sfm").results[0]
    assert result.error is not None and (result.error.code, result.error.retryable) == ("CANCELLED", False)
    assert "training" in [beat.message for beat in api.stage("job-1", "sfm").heartbeats]
    assert api.events[-1] == "ack"


def test_lease_lost_at_a_heartbeat_stops_the_handler_and_drops_the_message_unreported(
    api: WorkerApiServer, tmp_path: Path
) -> None:
    api.stage("job-1", "sfm").revoke_after_heartbeats = 1

    def endless(job: StageJob) -> StageOutput:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            job.on_progress(0.1, "working")
            time.sleep(0.02)
        raise AssertionError("the handler never noticed the lost lease")

    make_worker(api, tmp_path, endless).handle(RecordingDelivery(api, request().to_bytes()))
    assert api.events == ["claim 1", "heartbeat refused", "ack"]
    assert api.stage("job-1", "sfm").results == []
    assert list((tmp_path / "scratch").iterdir()) == []


def test_poison_message_is_dead_lettered_and_the_worker_keeps_serving(api: WorkerApiServer, tmp_path: Path) -> None:
    broker = MemoryBroker()
    broker.declare()
    broker.publish("sfm", b"{not json", message_id="poison")
    broker.publish("sfm", b'{"job_id": "job-1", "stage": "sfm"}', message_id="no-attempt")
    broker.publish("sfm", request().to_bytes(), message_id="good")
    spec = WorkerSpec(stage="sfm", inputs=("input",), handler=copying_handler)
    with start_workers([spec], broker, api.url, TOKEN, tmp_path / "scratch"):
        deadline = time.monotonic() + WAIT_S
        while not api.stage("job-1", "sfm").results and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [r.status for r in api.stage("job-1", "sfm").results] == ["succeeded"]
    assert broker.drain_dead_letters("sfm") == [b"{not json", b'{"job_id": "job-1", "stage": "sfm"}']


def test_stopping_the_worker_mid_stage_gives_the_message_back_unreported(api: WorkerApiServer, tmp_path: Path) -> None:
    broker = MemoryBroker()
    broker.declare()
    broker.publish("sfm", request().to_bytes(), message_id="m-1")
    running = threading.Event()

    def endless(job: StageJob) -> StageOutput:
        running.set()
        while True:
            job.on_progress(0.2, "working")
            time.sleep(0.02)

    pool = start_workers([WorkerSpec("sfm", ("input",), endless)], broker, api.url, TOKEN, tmp_path / "scratch")
    assert running.wait(WAIT_S)
    pool.stop(timeout_s=WAIT_S)
    assert api.stage("job-1", "sfm").results == []
    assert broker.message_count("sfm") == 1  # requeued; the next claim says redelivered=True
    assert list((tmp_path / "scratch" / "sfm").iterdir()) == []


def test_unreachable_server_at_claim_gives_the_message_back(api: WorkerApiServer, tmp_path: Path) -> None:
    api.stop()
    worker = make_worker(api, tmp_path, retry_for_s=0.5)
    worker.handle(RecordingDelivery(api, request().to_bytes()))
    assert api.events == ["requeue"]


def test_refused_upload_is_reported_as_a_retryable_internal_failure(api: WorkerApiServer, tmp_path: Path) -> None:
    api.stage("job-1", "sfm").corrupt_uploads = True
    make_worker(api, tmp_path).handle(RecordingDelivery(api, request().to_bytes()))
    result = api.stage("job-1", "sfm").results[0]
    assert result.error is not None and (result.error.code, result.error.retryable) == ("INTERNAL", True)
    assert "DIGEST_MISMATCH" in result.error.message
    assert api.events[-2:] == ["result failed", "ack"]


def test_capture_report_goes_out_in_a_heartbeat_at_once_and_before_the_result(tmp_path: Path) -> None:
    api = WorkerApiServer(heartbeat_s=60.0).start()  # no periodic heartbeat during the test
    api.inputs[("job-1", "input")] = VIDEO
    report = poor_capture_report()

    sent_while_running: list[bool] = []

    def judged_poor(job: StageJob) -> StageOutput:
        job.on_capture(report)
        deadline = time.monotonic() + WAIT_S
        while "heartbeat capture poor" not in api.events and time.monotonic() < deadline:
            time.sleep(0.01)
        sent_while_running.append("heartbeat capture poor" in api.events)
        raise StageError(ErrorCode.POOR_CAPTURE, "The capture check judged this video poor.")

    try:
        make_worker(api, tmp_path, judged_poor).handle(RecordingDelivery(api, request().to_bytes()))
    finally:
        api.stop()
    assert sent_while_running == [True]  # not held back until the next period
    assert api.events == ["claim 1", "heartbeat capture poor", "result failed", "ack"]
    (beat,) = api.stage("job-1", "sfm").heartbeats
    assert beat.capture == report
    assert api.stage("job-1", "sfm").results[0].error.code == "POOR_CAPTURE"
