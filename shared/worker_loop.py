"""The consumer loop every worker runs: a message in, a stage run under a lease, the result reported.

For each delivery (one at a time):

1. Decode the :class:`~shared.messages.StageRequest`; a body that does not parse (or names another
   stage) is dead-lettered and the worker carries on.
2. **Claim** the stage. A 409 (stale attempt, already claimed, cancelled, finished) → ack and drop.
3. Validate ``lease.options`` and fetch the inputs into a per-job scratch directory.
4. Run the stage handler while a heartbeat thread reports progress every ``heartbeat_s``. The
   handler's ``on_progress`` raises :class:`~shared.errors.Cancelled` once a heartbeat answered
   ``cancelled``, :class:`~shared.worker_client.LeaseLost` once a heartbeat got 409, and
   :class:`WorkerStopping` once the worker is asked to stop.
5. Upload the artifacts, then **report** the result: ``succeeded``; or ``failed`` with the
   :class:`~shared.errors.StageError`'s code and retryability (``CANCELLED`` for a cancellation;
   ``INTERNAL``, retryable, for any other exception).
6. **Ack only after the server accepted the result.** Lease lost anywhere (a redelivered message
   whose stage is still held by a live worker included) → ack and drop. Server unreachable past the
   client's retry budget → requeue. Worker stopping → release the lease (one try: the stage is
   queued again) and requeue, so the next worker claims it at once.
7. Remove the scratch directory.

A stopping worker never waits out a retry budget (the client's retry loops watch the stop event).
What a worker kind is and what its handler gets: :mod:`shared.stage_handler`; where workers run
(threads, a process): :mod:`shared.worker_process`.

Workers hold no retry state: attempts, leases and re-publishing belong to the server.
"""

from __future__ import annotations

import enum
import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.broker import Broker, Delivery
from shared.capture.report import CaptureReport
from shared.errors import Cancelled, ErrorCode, StageError
from shared.eta import RateState, update_rate
from shared.messages import StageRequest
from shared.options import OPTIONS_BY_STAGE
from shared.scratch import ScratchSpace
from shared.stage_handler import StageJob, WorkerSpec
from shared.worker_api import ClaimRequest, Heartbeat, Lease, StageErrorBody, StageResult, WorkerAnnouncement
from shared.worker_client import (
    ClientStopped,
    LeaseLost,
    ServerUnreachable,
    WorkerApiError,
    WorkerAuthError,
    WorkerClient,
)

log = logging.getLogger(__name__)


class WorkerStopping(Exception):  # noqa: N818 - a state, not an error
    """Raised by ``on_progress`` when the worker was asked to stop; the message is requeued unreported."""


class _Settle(enum.Enum):
    ACK = "ack"
    REQUEUE = "requeue"
    DEAD_LETTER = "dead-letter"


class _Heartbeat:
    """Heartbeats progress in a thread; turns the server's answers into exceptions at ``on_progress``."""

    def __init__(
        self, client: WorkerClient, request: StageRequest, lease_id: str, interval_s: float, stopping: threading.Event
    ) -> None:
        self._client = client
        self._request = request
        self._lease_id = lease_id
        self._interval_s = interval_s
        self._stopping = stopping
        self._lock = threading.Lock()
        self._progress = (0.0, "starting")
        self._rate = RateState()  # the smoothed progress rate each heartbeat reports
        self._capture: CaptureReport | None = None  # set by the stage, cleared once a heartbeat carried it
        self._wake = threading.Event()  # a heartbeat is due now
        self._done = threading.Event()
        self.cancelled = threading.Event()
        self.lease_lost: LeaseLost | None = None
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{request.job_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._wake.set()
        self._thread.join()

    def on_progress(self, fraction: float, message: str) -> None:
        """The handler's progress callback: records progress, raises if the attempt must end."""
        with self._lock:
            self._progress = (min(max(float(fraction), 0.0), 1.0), message[:500])
            self._rate = update_rate(self._rate, self._progress[0], time.monotonic())
        self.check()

    def on_capture(self, report: CaptureReport) -> None:
        """The handler's capture callback: a heartbeat carries ``report`` at once (and before the result)."""
        with self._lock:
            self._capture = report
        self._wake.set()

    def check(self) -> None:
        """Raise :class:`LeaseLost`, :class:`Cancelled` or :class:`WorkerStopping` when due."""
        if self.lease_lost is not None:
            raise self.lease_lost
        if self.cancelled.is_set():
            raise Cancelled()
        if self._stopping.is_set():
            raise WorkerStopping()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            with self._lock:
                progress, message = self._progress
                capture = self._capture
                self._rate = update_rate(self._rate, progress, time.monotonic())  # a stall lowers the rate
                rate = self._rate.rate
            if self._done.is_set() and capture is None:
                return  # the stage ended: its result follows; a pending capture is sent first
            beat = Heartbeat(lease_id=self._lease_id, progress=progress, message=message, capture=capture, rate=rate)
            try:
                reply = self._client.heartbeat(
                    self._request.job_id, self._request.stage, beat, retry_for_s=self._interval_s
                )
            except LeaseLost as exc:
                log.warning("lease of %s/%s lost: %s", self._request.job_id, self._request.stage, exc)
                self.lease_lost = exc
                return
            except WorkerApiError as exc:  # unreachable or refused: keep working, try again next period
                log.warning("heartbeat of %s/%s failed: %s", self._request.job_id, self._request.stage, exc)
                if self._done.is_set():
                    return
                continue
            with self._lock:
                if self._capture is capture:
                    self._capture = None
            if self._done.is_set():
                return
            if reply.cancelled and not self.cancelled.is_set():
                log.info("job %s was cancelled", self._request.job_id)
                self.cancelled.set()


class Worker:
    """One consumer of one stage queue: claims, runs, reports and settles each message.

    Args:
        spec: the stage, its inputs and its handler.
        broker: where the stage's messages come from.
        client: the worker API client.
        worker_id: how the server records this worker.
        scratch_root: this worker kind's scratch root; while :meth:`run` runs, each attempt works in a
            folder of the worker's locked run folder there (:class:`~shared.scratch.ScratchSpace`),
            and run folders that dead processes left behind are removed when it starts.
        heartbeat_s: heartbeat at most this far apart (the lease's ``heartbeat_s`` applies when shorter).
    """

    def __init__(
        self,
        spec: WorkerSpec,
        broker: Broker,
        client: WorkerClient,
        *,
        worker_id: str,
        scratch_root: Path,
        heartbeat_s: float | None = None,
    ) -> None:
        self.spec = spec
        self.broker = broker
        self.client = client
        self.worker_id = worker_id
        self.scratch_root = scratch_root
        self.heartbeat_s = heartbeat_s
        self.fatal: WorkerAuthError | None = None
        self._stop = threading.Event()
        self._run_dir: Path | None = None

    def run(self, stop: threading.Event) -> None:
        """Consume the stage's queue until ``stop`` is set (or the worker token is refused).

        Raises:
            WorkerAuthError: the server refused the worker token; the message was given back.
        """
        self._stop = stop
        self.client.stop = stop
        log.info("worker %s serving stage %s", self.worker_id, self.spec.stage)
        self._announce()
        with ScratchSpace(self.scratch_root) as run_dir:
            self._run_dir = run_dir
            try:
                self.broker.consume(self.spec.stage, self.handle, stop=stop)
            finally:
                self._run_dir = None
        if self.fatal is not None:
            raise self.fatal

    def _announce(self) -> None:
        """Tell the server what this training worker trains on; a server that cannot hear it yet is no reason to stop."""
        if self.spec.device_class is None:
            return
        announcement = WorkerAnnouncement(
            worker_id=self.worker_id, stage=self.spec.stage, device=self.spec.device_class()
        )
        try:
            self.client.announce(announcement)
        except WorkerAuthError:
            raise
        except Exception as exc:
            log.warning("could not announce worker %s to the server: %s", self.worker_id, exc)

    def handle(self, delivery: Delivery) -> None:
        """The broker handler: process one delivery and settle it."""
        try:
            request = StageRequest.from_bytes(delivery.body)
        except ValidationError as exc:
            log.error("dead-lettering undecodable message %s: %s", delivery.message_id, exc)
            delivery.reject_to_dead_letter()
            return
        if request.stage != self.spec.stage:
            log.error(
                "dead-lettering message %s for stage %s on %s", request.message_id, request.stage, self.spec.stage
            )
            delivery.reject_to_dead_letter()
            return
        settle = self._process(request, delivery.redelivered)
        log.info("%s/%s attempt %d: %s", request.job_id, request.stage, request.attempt, settle.value)
        if settle is _Settle.ACK:
            delivery.ack()
        elif settle is _Settle.REQUEUE:
            delivery.requeue()
        else:
            delivery.reject_to_dead_letter()

    def _process(self, request: StageRequest, redelivered: bool) -> _Settle:
        claim = ClaimRequest(
            message_id=request.message_id, attempt=request.attempt, worker_id=self.worker_id, redelivered=redelivered
        )
        try:
            lease = self.client.claim(request.job_id, request.stage, claim)
        except Exception as exc:
            return self._settle_for(exc, request, "claim")
        if redelivered:
            log.info("%s/%s: claimed a redelivered message (its lease was free)", request.job_id, request.stage)
        scratch = (self._run_dir or self.scratch_root) / f"{request.job_id}-{request.stage}-{lease.lease_id[:16]}"
        interval = min(lease.heartbeat_s, self.heartbeat_s or lease.heartbeat_s)
        try:
            with _Heartbeat(self.client, request, lease.lease_id, interval, self._stop) as beat:
                result = self._attempt(request, lease, scratch, beat)
        except Exception as exc:
            self._release_if_stopping(exc, request, lease)
            return self._settle_for(exc, request, "stage")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        # Heartbeats have stopped: the result call itself reaches the server (a lease that expires
        # while it retries makes the server redo the stage, and this result is answered 409).
        try:
            ack = self.client.report_result(request.job_id, request.stage, result)
        except Exception as exc:
            self._release_if_stopping(exc, request, lease)
            return self._settle_for(exc, request, "result")
        log.info(
            "%s/%s %s recorded%s",
            request.job_id,
            request.stage,
            result.status,
            " (retry scheduled)" if ack.retry_scheduled else "",
        )
        return _Settle.ACK

    def _attempt(self, request: StageRequest, lease: Lease, scratch: Path, beat: _Heartbeat) -> StageResult:
        """Fetch, run, upload; a stage failure becomes a ``failed`` result, the rest propagates."""
        started = time.monotonic()
        try:
            try:
                options = OPTIONS_BY_STAGE[request.stage].model_validate(lease.options)
            except ValidationError as exc:
                raise StageError(ErrorCode.INVALID_OPTIONS, f"invalid {request.stage} options: {exc}") from exc
            inputs: dict[str, Path] = {}
            for name in self.spec.inputs:
                beat.on_progress(0.0, f"downloading {name}")
                inputs[name] = self.client.fetch_input(request.job_id, name, lease.lease_id, scratch / "inputs")
            work_dir = scratch / "work"
            work_dir.mkdir(parents=True)
            job = StageJob(
                request, lease, options, inputs, work_dir, scratch / "out", beat.on_progress, beat.on_capture
            )
            output = self.spec.handler(job)
            uploaded: list[str] = []
            for name, path in output.artifacts.items():
                beat.check()
                self.client.upload_artifact(request.job_id, request.stage, name, path, lease.lease_id)
                uploaded.append(name)
            metrics = {**output.metrics, "worker_seconds": round(time.monotonic() - started, 3)}
            return StageResult(lease_id=lease.lease_id, status="succeeded", metrics=metrics, artifacts=uploaded)
        except (LeaseLost, WorkerStopping, ClientStopped, WorkerAuthError, ServerUnreachable):
            raise  # nothing to report (or no way to): settled by _settle_for
        except StageError as exc:
            log.warning("%s/%s failed: %r", request.job_id, request.stage, exc)
            error = exc
        except Exception as exc:
            log.exception("%s/%s crashed", request.job_id, request.stage)
            error = StageError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"[:2000], retryable=True)
        body = StageErrorBody(
            code=error.code.value, message=error.message, retryable=error.retryable, details=_jsonable(error.details)
        )
        metrics = {"worker_seconds": round(time.monotonic() - started, 3)}
        return StageResult(lease_id=lease.lease_id, status="failed", metrics=metrics, error=body)

    def _release_if_stopping(self, exc: Exception, request: StageRequest, lease: Lease) -> None:
        """Give the lease back when the attempt ends because the worker stops (one quick try)."""
        stopping = isinstance(exc, WorkerStopping | ClientStopped)
        if stopping and self.client.release(request.job_id, request.stage, lease.lease_id):
            log.info("%s/%s: lease released for the next worker", request.job_id, request.stage)

    def _settle_for(self, exc: Exception, request: StageRequest, step: str) -> _Settle:
        """How to settle a message whose ``step`` (claim, stage, result) raised ``exc``."""
        where = f"{request.job_id}/{request.stage} {step}"
        if isinstance(exc, LeaseLost):
            log.info("%s: lease refused (%s), dropping the message", where, exc.code or exc.detail)
            return _Settle.ACK
        if isinstance(exc, WorkerStopping | ClientStopped):
            log.info("%s: worker stopping, giving the message back", where)
            return _Settle.REQUEUE
        if isinstance(exc, ServerUnreachable):
            log.error("%s: server unreachable, giving the message back: %s", where, exc)
            return _Settle.REQUEUE
        if isinstance(exc, WorkerAuthError):
            log.critical("%s: the server refused the worker token; stopping this worker", where)
            self.fatal = exc
            self._stop.set()
            return _Settle.REQUEUE
        if isinstance(exc, WorkerApiError) and exc.status_code in (404, 410):
            log.warning("%s: job gone (%s), dropping the message", where, exc)
            return _Settle.ACK
        log.error("%s: refused (%s), dead-lettering the message", where, exc)
        return _Settle.DEAD_LETTER


def _jsonable(details: dict[str, object]) -> dict[str, Any]:
    jsonable: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return jsonable
