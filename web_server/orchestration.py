"""The job state machine: pure transition rules, and the conditional MongoDB writes that apply them.

Rules (see ``docs/architecture.md``, "Job lifecycle", and ``docs/queue.md``):

- ``sfm`` first; when it succeeds every requested training stage (``gs``, ``nerf``) is queued at
  once, and one failing never cancels its sibling.
- A claim grants a lease; the n-th grant is attempt n. A live lease is never granted twice, not
  even to a redelivered message: a broker restart redelivers the messages of workers that are
  alive and still heartbeating, so "redelivered" does not mean "its holder is gone". A redelivery
  of a running stage is refused (the worker acks and drops it); if the holder really is gone, its
  lease expires and the reaper publishes a new attempt.
- A holder that stops on purpose (SIGTERM) releases its lease: the stage is ``queued`` again and
  the grant is returned (``attempt`` − 1), so the requeued message is claimed at once.
- Every worker write names its lease; a lease that is not the stage's current one is refused.
- A retryable failure is queued again after a backoff (``retry_at``), up to ``max_attempts``;
  a permanent one fails the stage at once. The reaper re-queues expired leases the same way and
  fails them with ``WORKER_LOST`` at the limit, publishes retries whose backoff is over, and
  re-publishes queued stages nobody claimed.
- The job status is derived from its stages by :func:`aggregate_status`.

Every write is a single conditional :class:`~web_server.store.Store` method (one
``find_one_and_update``/``update_one`` whose filter carries the condition it relies on, and
increments ``version``); writes derived from a read (status aggregation, cancel) are conditioned on
that read's ``version`` and retried, so concurrent writers never lose updates.
A stage is written ``queued`` *before* its message is published: a crash in between is repaired
by the reaper's unclaimed re-publish. A publish waits for the broker at most
``publish_timeout_s`` (the broker object's own budget), so a request never hangs on a broker that
is down: the stage is marked ``unpublished`` and every reaper pass publishes such stages again
until the broker takes them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.artifacts import VIDEO_INPUT
from shared.backoff import backoff_delay_s
from shared.errors import ErrorCode
from shared.messages import STAGES, TRAINING_STAGES, StageName, StageRequest
from shared.settings import Settings
from shared.worker_api import ClaimRequest, Heartbeat, HeartbeatReply, Lease, ResultAck, StageResult
from web_server.artifact_names import is_stage_artifact
from web_server.eta_history import StageHistory
from web_server.models import (
    ACTIVE_JOB,
    TERMINAL_JOB,
    TERMINAL_STAGE,
    JobStatus,
    StoredError,
    StoredFile,
    StoredJob,
    StoredStage,
)
from web_server.publisher import StagePublisher
from web_server.store import Store, as_utc

logger = logging.getLogger(__name__)

#: How long after its creation a job's ``sfm`` stage may still be ``pending`` before the reaper queues it.
NEW_JOB_PUBLISH_GRACE_S = 60.0
#: Called with ``(job_id, now)`` after a write that may change a job's status or record its capture
#: check (the webhook outbox: :class:`web_server.webhook_events.WebhookEvents`); it must not raise.
ChangeListener = Callable[[str, datetime], None]
MAX_BACKOFF_S = 600.0


class LeaseConflictError(Exception):
    """A worker call refused with 409; ``code`` is a ``shared.worker_api.ConflictCode``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class RejectedError(Exception):
    """A worker call that is malformed for the stage (unknown stage, missing artifact): 4xx."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


# --- pure rules -----------------------------------------------------------------------------------
def aggregate_status(stage_statuses: Mapping[str, str], *, claimed: bool) -> JobStatus:
    """The status of a job that was not cancelled, from its stages' statuses.

    Args:
        stage_statuses: stage name -> stage status, for every requested stage (``sfm`` included).
        claimed: whether any stage was ever claimed (before that a job is ``queued``).

    Returns:
        ``failed`` when sfm failed or every training stage did; ``succeeded`` when every stage
        succeeded; ``partial`` when all finished and some but not all training stages succeeded;
        otherwise ``running`` (or ``queued`` before the first claim).
    """
    if stage_statuses.get("sfm") == "failed":
        return "failed"
    if any(status not in TERMINAL_STAGE for status in stage_statuses.values()):
        return "running" if claimed else "queued"
    training = [status for name, status in stage_statuses.items() if name != "sfm"]
    if all(status == "succeeded" for status in stage_statuses.values()):
        return "succeeded"
    if any(status == "succeeded" for status in training):
        return "partial"
    return "failed"


def next_stages(finished: StageName, methods: list[StageName]) -> list[StageName]:
    """The stages to queue when ``finished`` succeeds: the requested training stages after ``sfm``."""
    if finished != "sfm":
        return []
    return [stage for stage in TRAINING_STAGES if stage in methods]


def retry_delay_s(failed_attempt: int, base_s: float) -> float:
    """Exponential backoff before the attempt after ``failed_attempt``: ``base · 2^(n−1)``, capped."""
    return backoff_delay_s(failed_attempt, base_s, MAX_BACKOFF_S)


def should_retry(attempt: int, max_attempts: int, retryable: bool) -> bool:
    """Whether a failed attempt is tried again: retryable and attempts left."""
    return retryable and attempt < max_attempts


def first_error(job: StoredJob) -> StoredError | None:
    """The error that decided a failed or partial job: sfm's, else the first failed training stage's.

    None for a job of any other status (a cancelled job may hold a failed stage: it shows no error).
    """
    if job.status not in ("failed", "partial"):
        return None
    for name in STAGES:
        stage = job.stages.get(name)
        if stage is not None and stage.status == "failed" and stage.error is not None:
            return stage.error
    return None


@dataclass
class ReapReport:
    """What one reaper pass did (job ids)."""

    requeued: list[str] = field(default_factory=list)
    worker_lost: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)


# --- the orchestrator -----------------------------------------------------------------------------
class Orchestrator:
    """Applies the rules to MongoDB and publishes stage requests.

    Args:
        store: the database.
        publisher: the broker (``publish(stage, body, *, message_id)``).
        settings: lease length, attempt limit, backoff, requeue delay.
        stage_history: where a succeeded stage's measured duration is recorded (the ETA's history).
        on_change: told about every job whose status may have changed or whose capture check was recorded.
    """

    def __init__(
        self,
        store: Store,
        publisher: StagePublisher,
        settings: Settings,
        stage_history: StageHistory,
        *,
        on_change: ChangeListener,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.stage_history = stage_history
        self.on_change = on_change

    @property
    def heartbeat_s(self) -> float:
        """How often a worker must heartbeat: often enough for three beats per lease."""
        return min(self.settings.heartbeat_s, self.settings.lease_s / 3)

    # -- reading -----------------------------------------------------------------------------------
    def get(self, job_id: str) -> StoredJob | None:
        """The job, or None."""
        return self.store.get_job(job_id)

    # -- creating and publishing -------------------------------------------------------------------
    def create_job(self, new_job: StoredJob, now: datetime) -> StoredJob:
        """Insert a new job (its ``sfm`` stage ``pending``) and queue ``sfm``.

        Raises ``pymongo.errors.DuplicateKeyError`` when the owner's idempotency key is taken.
        """
        self.insert(new_job, now)
        return self.queue_first(new_job.id, ["sfm"], now)

    def insert(self, new_job: StoredJob, now: datetime) -> None:
        """Store a new job whose stages are all ``pending`` and tell the listener; nothing is queued yet.

        Raises ``pymongo.errors.DuplicateKeyError`` when the owner's idempotency key is taken.
        """
        self.store.insert_job(new_job)
        self.on_change(new_job.id, now)

    def queue_first(self, job_id: str, stages: Sequence[StageName], now: datetime) -> StoredJob:
        """Queue the first ``stages`` of a job just inserted (each only while still ``pending``); returns the job."""
        for stage in stages:
            self.publish_stage(job_id, stage, now, expect={"status": "pending"})
        job = self.get(job_id)
        assert job is not None
        return job

    def publish_stage(
        self,
        job_id: str,
        stage: StageName,
        now: datetime,
        *,
        expect: Mapping[str, Any],
        message: str = "waiting for a worker",
    ) -> bool:
        """Mark a stage ``queued`` (when ``expect`` still holds) and publish its request.

        Args:
            job_id: the job.
            stage: the stage to queue.
            now: the current time.
            expect: stage field -> the value it must still hold for the write (a status, a ``retry_at``).
            message: the stage's message while it waits.

        Returns:
            Whether this call queued the stage (False: another writer changed it first).
        """
        message_id = uuid.uuid4().hex
        queued = self.store.queue_stage(job_id, stage, now, message_id=message_id, message=message, expect=expect)
        if queued is None:
            return False
        self._send(job_id, stage, queued, message_id, now)
        return True

    def _send(self, job_id: str, stage: StageName, stage_doc: StoredStage, message_id: str, now: datetime) -> bool:
        """Publish the stage's request; on failure mark the stage ``unpublished``.

        Args:
            job_id: the job.
            stage: the stage.
            stage_doc: the stage as stored (its ``attempt``, ``options``, ``unpublished``).
            message_id: the request's id, the stage's ``published_message_id``.
            now: the request's ``created_at``.

        Returns:
            Whether the broker took the message.
        """
        request = StageRequest(
            message_id=message_id,
            job_id=job_id,
            stage=stage,
            attempt=stage_doc.attempt + 1,
            options=stage_doc.options,
            created_at=now,
        )
        try:
            self.publisher.publish(stage, request.to_bytes(), message_id=message_id)
        except Exception as exc:  # the stage stays queued; the reaper publishes it again
            logger.warning("publishing %s of job %s failed (%s); the reaper will retry", stage, job_id, exc)
            self.store.set_stage_unpublished(job_id, stage, message_id, True)
            return False
        if stage_doc.unpublished:
            self.store.set_stage_unpublished(job_id, stage, message_id, False)
        return True

    def publish_unpublished(self, now: datetime) -> list[str]:
        """Publish again the queued stages whose request the broker did not take; stops at the first failure.

        Returns:
            The job ids whose stage was published now.
        """
        published: list[str] = []
        for stage in STAGES:
            for job_id, stage_doc in self.store.find_unpublished_stages(stage):
                message_id = stage_doc.published_message_id
                if message_id is None:
                    continue
                if not self._send(job_id, stage, stage_doc, message_id, now):
                    return published  # the broker is still away: the next pass tries again
                published.append(job_id)
        return published

    # -- worker calls ------------------------------------------------------------------------------
    def claim(self, job_id: str, stage: StageName, request: ClaimRequest, now: datetime) -> Lease:
        """Grant the stage's lease for the message a worker received, or raise :class:`LeaseConflictError`."""
        # Never a live lease, whatever ``request.redelivered`` says (see the module docstring).
        lease_id = uuid.uuid4().hex
        expires = now + timedelta(seconds=self.settings.lease_s)
        stage_doc = self.store.claim_stage(
            job_id,
            stage,
            now,
            worker_id=request.worker_id,
            message_id=request.message_id,
            lease_id=lease_id,
            lease_expires_at=expires,
            max_attempts=self.settings.max_attempts,
        )
        if stage_doc is None:
            raise self._claim_conflict(job_id, stage, request, now)
        self.on_change(job_id, now)
        return Lease(
            lease_id=lease_id,
            expires_at=expires,
            attempt=stage_doc.attempt,
            options=stage_doc.options,
            heartbeat_s=self.heartbeat_s,
        )

    def _claim_conflict(self, job_id: str, stage: StageName, request: ClaimRequest, now: datetime) -> Exception:
        job = self.get(job_id)
        if job is None:
            return LeaseConflictError("JOB_GONE", "The job was deleted.")
        current = job.stages.get(stage)
        if current is None:
            return RejectedError(404, "NOT_FOUND", f"Job {job_id} has no {stage} stage.")
        if job.status == "cancelled" or current.status == "cancelled":
            return LeaseConflictError("CANCELLED", "The job was cancelled.")
        if current.status in TERMINAL_STAGE or job.status in TERMINAL_JOB:
            return LeaseConflictError("STAGE_FINISHED", f"The {stage} stage already {current.status}.")
        if current.status == "pending":
            return LeaseConflictError("STAGE_FINISHED", f"The {stage} stage is not queued yet.")
        if current.attempt >= self.settings.max_attempts:
            return LeaseConflictError("ALREADY_CLAIMED", f"The {stage} stage used all {current.attempt} attempts.")
        retry_at = as_utc(current.retry_at)
        if current.status == "queued" and retry_at is not None and retry_at > as_utc(now):
            return LeaseConflictError(
                "ALREADY_CLAIMED",
                f"Attempt {current.attempt + 1} of {stage} waits for its retry backoff until {retry_at}; "
                "it is published then (drop this message).",
            )
        expires = as_utc(current.lease_expires_at)
        why = " (a redelivered message of a stage whose holder is alive: drop it)" if request.redelivered else ""
        return LeaseConflictError(
            "ALREADY_CLAIMED",
            f"Attempt {current.attempt} of {stage} is held by {current.worker_id} until {expires}{why}.",
        )

    def _lease_conflict(self, job_id: str, stage: StageName, lease_id: str) -> Exception:
        job = self.get(job_id)
        if job is None:
            return LeaseConflictError("JOB_GONE", "The job was deleted.")
        current = job.stages.get(stage)
        if current is None:
            return RejectedError(404, "NOT_FOUND", f"Job {job_id} has no {stage} stage.")
        if current.lease_id != lease_id or current.status in ("pending", "queued"):
            return LeaseConflictError("STALE_LEASE", "This lease is not the stage's current one; drop the work.")
        if job.status == "cancelled" or current.status == "cancelled":
            return LeaseConflictError("CANCELLED", "The job was cancelled.")
        return LeaseConflictError("STAGE_FINISHED", f"The {stage} stage is {current.status}.")

    def heartbeat(self, job_id: str, stage: StageName, beat: Heartbeat, now: datetime) -> HeartbeatReply:
        """Renew the lease and record progress; a cancelled job is answered ``cancelled=True``."""
        expires = now + timedelta(seconds=self.settings.lease_s)
        renewed = self.store.renew_lease(
            job_id,
            stage,
            beat.lease_id,
            now,
            lease_expires_at=expires,
            progress=beat.progress,
            message=beat.message,
            capture=beat.capture,
            rate=beat.rate,
        )
        if renewed:
            if beat.capture is not None:
                self.on_change(job_id, now)
            return HeartbeatReply(expires_at=expires, cancelled=False)
        error = self._lease_conflict(job_id, stage, beat.lease_id)
        if isinstance(error, LeaseConflictError) and error.code == "CANCELLED":
            return HeartbeatReply(expires_at=now, cancelled=True)
        raise error

    def release(self, job_id: str, stage: StageName, lease_id: str, now: datetime) -> None:
        """The holder gives its lease back unfinished (it is stopping): the stage is ``queued`` again.

        The grant is returned (``attempt`` − 1) because the attempt never ran to an outcome; the
        holder requeues its message, whose next claim is granted at once. Raises
        :class:`LeaseConflictError` when ``lease_id`` is not the stage's current lease.
        """
        if not self.store.release_stage(job_id, stage, lease_id, now):
            raise self._lease_conflict(job_id, stage, lease_id)
        self.settle(job_id, now)

    def require_lease(self, job_id: str, stage: StageName, lease_id: str) -> StoredJob:
        """The job when ``lease_id`` is the running stage's current lease, else raise."""
        job = self.get(job_id)
        current = job.stages.get(stage) if job else None
        if (
            job is None
            or current is None
            or job.status not in ACTIVE_JOB
            or current.status != "running"
            or current.lease_id != lease_id
        ):
            raise self._lease_conflict(job_id, stage, lease_id)
        return job

    def input_file(self, job_id: str, lease_id: str, name: str) -> StoredFile:
        """A file a lease holder may read: ``input`` (the video) or an artifact of a finished stage."""
        job = self.get(job_id)
        if job is None:
            raise LeaseConflictError("JOB_GONE", "The job was deleted.")
        holders = [s for s in job.stages.values() if s.status == "running" and s.lease_id == lease_id]
        if not holders or job.status not in ACTIVE_JOB:
            if job.status == "cancelled":
                raise LeaseConflictError("CANCELLED", "The job was cancelled.")
            raise LeaseConflictError("STALE_LEASE", "This lease holds no running stage of the job.")
        if name == VIDEO_INPUT:
            return job.input
        for stage in job.stages.values():
            if stage.status == "succeeded":
                for artifact in stage.artifacts:
                    if artifact.name == name:
                        return artifact
        raise RejectedError(404, "NOT_FOUND", f"Job {job_id} has no input named {name!r}.")

    def record_result(self, job_id: str, stage: StageName, result: StageResult, now: datetime) -> ResultAck:
        """Record an attempt's outcome and move the job on (next stages, retry, or the final status)."""
        if result.status == "succeeded":
            self._record_success(job_id, stage, result, now)
            ack = ResultAck(recorded=True, retry_scheduled=False)
        else:
            ack = self._record_failure(job_id, stage, result, now)
        self.settle(job_id, now)
        return ack

    def _uploaded(self, job_id: str, stage: StageName, lease_id: str, name: str) -> StoredFile:
        if not is_stage_artifact(stage, name):
            raise RejectedError(422, "INVALID_ARTIFACT_NAME", f"The {stage} stage has no artifact named {name!r}.")
        stored = self.store.find_lease_upload(job_id, stage, name, lease_id)
        if stored is None:
            raise RejectedError(422, "ARTIFACT_MISSING", f"{name} was not uploaded with this lease.")
        return stored

    def _record_success(self, job_id: str, stage: StageName, result: StageResult, now: datetime) -> None:
        self.require_lease(job_id, stage, result.lease_id)
        files = [self._uploaded(job_id, stage, result.lease_id, name) for name in dict.fromkeys(result.artifacts)]
        job = self.store.succeed_stage(job_id, stage, result.lease_id, now, metrics=result.metrics, artifacts=files)
        if job is None:
            raise self._lease_conflict(job_id, stage, result.lease_id)
        for f in files:  # earlier attempts' copies of the same names
            self.store.delete_job_files(job_id, name=f.name, keep={f.file_id})
        for follower in next_stages(stage, job.methods):
            self.publish_stage(job_id, follower, now, expect={"status": "pending"})
        try:  # the measured duration: the next jobs' ETA (best effort)
            self.stage_history.record(job, stage)
        except Exception as exc:
            logger.warning("recording the duration of %s of job %s failed: %s", stage, job_id, exc)

    def _record_failure(self, job_id: str, stage: StageName, result: StageResult, now: datetime) -> ResultAck:
        job = self.require_lease(job_id, stage, result.lease_id)
        error = (
            StoredError(**result.error.model_dump())
            if result.error is not None
            else StoredError(
                code=ErrorCode.INTERNAL.value,
                message="The worker reported a failure without an error.",
                retryable=True,
            )
        )
        attempt = job.stages[stage].attempt
        retry = should_retry(attempt, self.settings.max_attempts, error.retryable)
        if retry:
            delay = retry_delay_s(attempt, self.settings.retry_backoff_s)
            written = self.store.requeue_attempt(
                job_id,
                stage,
                result.lease_id,
                now,
                error=error,
                retry_at=now + timedelta(seconds=delay),
                message=f"attempt {attempt} failed ({error.code}); retrying in {delay:.0f} s",
            )
        else:
            written = self.store.fail_attempt(job_id, stage, result.lease_id, now, error=error)
        if not written:
            raise self._lease_conflict(job_id, stage, result.lease_id)
        if retry:
            self.publish_due_retries(now, job_id=job_id)
        return ResultAck(recorded=True, retry_scheduled=retry)

    # -- status ------------------------------------------------------------------------------------
    def settle(self, job_id: str, now: datetime) -> StoredJob | None:
        """Bring the job's status in line with its stages (and skip training stages after sfm failed).

        Conditioned on the version it read; retried when another writer got in between.
        """
        while True:
            job = self.get(job_id)
            if job is None or job.status in TERMINAL_JOB:
                return job
            job_fields: dict[str, Any] = {}
            stage_fields: dict[str, dict[str, Any]] = {}
            if job.stages["sfm"].status == "failed":
                for name, stage in job.stages.items():
                    if name != "sfm" and stage.status == "pending":
                        stage_fields[name] = {
                            "status": "cancelled",
                            "message": "not run: structure from motion failed",
                            "finished_at": now,
                        }
            statuses: dict[str, str] = {
                name: stage_fields.get(name, {}).get("status", s.status) for name, s in job.stages.items()
            }
            claimed = any(s.attempt > 0 for s in job.stages.values())
            status = aggregate_status(statuses, claimed=claimed)
            if status != job.status:
                job_fields["status"] = status
                if status in TERMINAL_JOB:
                    job_fields["finished_at"] = now
            if not job_fields and not stage_fields:
                return job
            job_fields["updated_at"] = now
            if self.store.update_job_at_version(job_id, job.version, job_fields=job_fields, stage_fields=stage_fields):
                self.on_change(job_id, now)
                return self.get(job_id)

    def cancel(self, job_id: str, now: datetime) -> StoredJob | None:
        """Cancel a queued or running job: its unfinished stages become ``cancelled``; files stay.

        Running workers learn it at their next heartbeat. A finished job is returned unchanged.
        """
        while True:
            job = self.get(job_id)
            if job is None or job.status in TERMINAL_JOB:
                return job
            error = StoredError(code=ErrorCode.CANCELLED.value, message="The job was cancelled.", retryable=False)
            stage_fields: dict[str, dict[str, Any]] = {
                name: {"status": "cancelled", "finished_at": now, "message": "cancelled", "error": error.model_dump()}
                for name, stage in job.stages.items()
                if stage.status not in TERMINAL_STAGE
            }
            job_fields = {"status": "cancelled", "finished_at": now, "updated_at": now}
            if self.store.update_job_at_version(job_id, job.version, job_fields=job_fields, stage_fields=stage_fields):
                self.on_change(job_id, now)
                return self.get(job_id)

    def delete(self, job_id: str, now: datetime) -> None:
        """Cancel the job if it runs, then delete its files and its record.

        Files that a run of this job still references (its input, its SfM result) stay; the
        janitor removes them once no job references them any more.
        """
        self.cancel(job_id, now)
        borrowed = self.store.borrowed_file_ids(self.store.job_file_ids(job_id), besides=job_id)
        self.store.delete_job_files(job_id, keep=borrowed)
        self.store.delete_job(job_id)
        self.store.delete_job_files(job_id, keep=borrowed)  # an upload that raced the first sweep

    # -- the reaper --------------------------------------------------------------------------------
    def publish_due_retries(self, now: datetime, *, job_id: str | None = None) -> list[str]:
        """Publish queued stages whose retry backoff is over; returns their job ids."""
        published: list[str] = []
        for stage in STAGES:
            for due_job_id, stage_doc in self.store.find_due_retries(stage, now, job_id=job_id):
                why = stage_doc.last_error.code if stage_doc.last_error is not None else "a failure"
                message = f"waiting for a worker (attempt {stage_doc.attempt + 1}, after {why})"
                expect = {"status": "queued", "retry_at": stage_doc.retry_at}
                if self.publish_stage(due_job_id, stage, now, expect=expect, message=message):
                    published.append(due_job_id)
        return published

    def reap(self, now: datetime) -> ReapReport:
        """One reaper pass: expired leases, unpublished requests, due retries, unclaimed stages, unsettled jobs.

        Args:
            now: the current time (tests pass a later one to expire leases).

        Returns:
            What was done, by job id.
        """
        report = ReapReport()
        report.published.extend(self.publish_unpublished(now))
        for stage in STAGES:
            for job_id, stage_doc in self.store.find_expired_leases(stage, now):
                self._expire_lease(job_id, stage, stage_doc, now, report)
            # A crash between a write and its publish leaves a stage pending: sfm after a job's insert (a
            # new job, or a run whose SfM runs again; the grace keeps the reaper out of the normal
            # milliseconds between), a training stage after sfm's success.
            stuck = (
                self.store.find_unqueued_new_jobs(now - timedelta(seconds=NEW_JOB_PUBLISH_GRACE_S))
                if stage == "sfm"
                else self.store.find_pending_after_sfm(stage)
            )
            for job_id in stuck:
                if self.publish_stage(job_id, stage, now, expect={"status": "pending"}):
                    report.published.append(job_id)
            stale = now - timedelta(seconds=self.settings.unclaimed_requeue_s)
            for job_id, stage_doc in self.store.find_unclaimed_stages(stage, stale):
                expect = {"status": "queued", "retry_at": None, "queued_at": stage_doc.queued_at}
                if self.publish_stage(job_id, stage, now, expect=expect):
                    report.published.append(job_id)
        report.published.extend(self.publish_due_retries(now))
        quiet = now - timedelta(seconds=self.settings.lease_s)
        for job_id in self.store.find_quiet_active_jobs(quiet):
            job = self.settle(job_id, now)
            if job is not None and job.status in TERMINAL_JOB:
                report.settled.append(job_id)
        return report

    def _expire_lease(
        self, job_id: str, stage: StageName, stage_doc: StoredStage, now: datetime, report: ReapReport
    ) -> None:
        attempt = stage_doc.attempt
        worker = stage_doc.worker_id
        error = StoredError(
            code=ErrorCode.WORKER_LOST.value,
            message=f"Worker {worker} stopped answering during attempt {attempt}.",
            retryable=True,
            details={"attempt": attempt, "worker_id": worker},
        )
        if attempt >= self.settings.max_attempts:
            error.message += f" All {attempt} attempts were used."
            written = self.store.fail_attempt(job_id, stage, stage_doc.lease_id, now, error=error, lease_expired=True)
        else:
            written = self.store.requeue_attempt(
                job_id,
                stage,
                stage_doc.lease_id,
                now,
                error=error,
                retry_at=now,
                message=f"worker lost; retrying (attempt {attempt + 1})",
                lease_expired=True,
            )
        if not written:
            return
        if attempt >= self.settings.max_attempts:
            report.worker_lost.append(job_id)
            self.settle(job_id, now)
        else:
            report.requeued.append(job_id)
            self.publish_due_retries(now, job_id=job_id)
