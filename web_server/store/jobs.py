"""The ``jobs`` collection: job reads, and the conditional writes the orchestrator's rules rely on.

Every write is one atomic ``find_one_and_update``/``update_one`` whose filter carries the condition
it relies on (the job active, a stage status, the lease id, an expired lease, a ``retry_at``, the
read ``version``) and increments ``version``; a write returns whether it applied, so the caller
can tell a lost race from a success. The rules themselves (when to retry, what the job status is)
live in :mod:`web_server.orchestration`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from shared.capture.report import CaptureReport
from shared.messages import STAGES, StageName
from web_server.models import ACTIVE_JOB, StoredError, StoredFile, StoredJob, StoredStage
from web_server.store.base import Collections, as_utc, to_document

_ACTIVE = {"$in": list(ACTIVE_JOB)}


def _stage_path(stage: str) -> str:
    return f"stages.{stage}"


def _stage_of(doc: Mapping[str, Any], stage: str) -> StoredStage:
    """The stage sub-document of a (projected) job document as a model."""
    return StoredStage.model_validate(doc["stages"][stage])


def _file_ids(job: Mapping[str, Any]) -> set[Any]:
    """The file ids a job document references: its input and every stage's artifacts."""
    ids = {(job.get("input") or {}).get("file_id")}
    for stage in (job.get("stages") or {}).values():
        ids.update(artifact.get("file_id") for artifact in stage.get("artifacts") or [])
    ids.discard(None)
    return ids


class JobQueries(Collections):
    """The ``jobs`` collection's reads and writes."""

    # --- reads ------------------------------------------------------------------------------------
    def get_job(self, job_id: str) -> StoredJob | None:
        """The job, whoever owns it, or None."""
        doc = self.jobs.find_one({"_id": job_id})
        return StoredJob.model_validate(doc) if doc else None

    def get_owned_job(self, job_id: str, owner: str) -> StoredJob | None:
        """The job when ``owner`` owns it, else None (a missing job and another owner's look alike)."""
        doc = self.jobs.find_one({"_id": job_id, "owner": owner})
        return StoredJob.model_validate(doc) if doc else None

    def job_exists(self, job_id: str) -> bool:
        """Whether a job with this id is stored."""
        return self.jobs.find_one({"_id": job_id}, {"_id": 1}) is not None

    def find_job_by_idempotency_key(self, owner: str, idempotency_key: str | None) -> StoredJob | None:
        """The owner's job created with this ``Idempotency-Key``, or None (always None without a key)."""
        if idempotency_key is None:
            return None
        doc = self.jobs.find_one({"owner": owner, "idempotency_key": idempotency_key})
        return StoredJob.model_validate(doc) if doc else None

    def list_owner_jobs(
        self,
        owner: str,
        *,
        limit: int,
        status: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[StoredJob]:
        """The owner's jobs, newest first (by ``created_at``, then id), at most ``limit``.

        Args:
            owner: whose jobs.
            limit: the most jobs returned (ask one more than a page to learn whether another follows).
            status: only jobs in this status.
            before: ``(created_at, id)`` of the last job of the previous page: only jobs after it.
        """
        query: dict[str, Any] = {"owner": owner}
        if status is not None:
            query["status"] = status
        if before is not None:
            created_at, job_id = before
            query["$or"] = [{"created_at": {"$lt": created_at}}, {"created_at": created_at, "_id": {"$lt": job_id}}]
        docs = self.jobs.find(query).sort([("created_at", -1), ("_id", -1)]).limit(limit)
        return [StoredJob.model_validate(d) for d in docs]

    def list_active_owner_jobs(self, owner: str) -> list[StoredJob]:
        """The owner's queued and running jobs, least recently updated first."""
        docs = self.jobs.find({"owner": owner, "status": _ACTIVE}).sort("updated_at", 1)
        return [StoredJob.model_validate(d) for d in docs]

    def list_owner_jobs_updated_since(self, owner: str, since: datetime) -> list[StoredJob]:
        """The owner's jobs with ``updated_at`` at or after ``since``, least recently updated first."""
        docs = self.jobs.find({"owner": owner, "updated_at": {"$gte": since}}).sort("updated_at", 1)
        return [StoredJob.model_validate(d) for d in docs]

    def queued_stage_times(self) -> dict[str, list[datetime]]:
        """The sorted ``queued_at`` of every queued stage of an active job, by stage name, in one query."""
        query: dict[str, Any] = {"status": _ACTIVE, "$or": [{f"stages.{s}.status": "queued"} for s in STAGES]}
        projection = {f"stages.{s}.{field}": 1 for s in STAGES for field in ("status", "queued_at")}
        queued: dict[str, list[datetime]] = {s: [] for s in STAGES}
        for doc in self.jobs.find(query, projection):
            for name, stage in (doc.get("stages") or {}).items():
                at = as_utc(stage.get("queued_at"))
                if name in queued and stage.get("status") == "queued" and at is not None:
                    queued[name].append(at)
        for values in queued.values():
            values.sort()
        return queued

    def status_counts(self) -> tuple[Counter[str], Counter[tuple[str, str]]]:
        """How many jobs are in each status, and how many stages in each ``(stage, status)``."""
        jobs: Counter[str] = Counter()
        stages: Counter[tuple[str, str]] = Counter()
        projection = {"status": 1, **{f"stages.{s}.status": 1 for s in STAGES}}
        for doc in self.jobs.find({}, projection):
            jobs[doc.get("status", "")] += 1
            for name, stage in (doc.get("stages") or {}).items():
                stages[(name, stage.get("status", ""))] += 1
        return jobs, stages

    def referenced_file_ids(self, job_ids: list[str]) -> set[Any]:
        """The file ids the given jobs reference: their inputs and every stage's artifacts."""
        docs = self.jobs.find({"_id": {"$in": job_ids}}, {"input.file_id": 1, "stages": 1})
        return {file_id for doc in docs for file_id in _file_ids(doc)}

    # --- runs (jobs started from another job's input and SfM result) --------------------------------
    def count_runs(self, root_job: str) -> int:
        """How many runs the uploaded job ``root_job`` has (the job itself not counted)."""
        return self.jobs.count_documents({"root_job": root_job})

    def job_family(self, owner: str, root_job: str) -> list[StoredJob]:
        """The owner's uploaded job ``root_job`` (when it still exists) and all its runs, oldest first."""
        query = {"owner": owner, "$or": [{"_id": root_job}, {"root_job": root_job}]}
        return [StoredJob.model_validate(doc) for doc in self.jobs.find(query).sort([("created_at", 1), ("_id", 1)])]

    def borrowed_file_ids(self, file_ids: list[Any], *, besides: str | None = None) -> set[Any]:
        """Those of ``file_ids`` that a run (other than the job ``besides``) references as ``shared_file_ids``."""
        if not file_ids:
            return set()
        query: dict[str, Any] = {"shared_file_ids": {"$in": file_ids}}
        if besides is not None:
            query["_id"] = {"$ne": besides}
        wanted = set(file_ids)
        borrowed: set[Any] = set()
        for doc in self.jobs.find(query, {"shared_file_ids": 1}):
            borrowed.update(fid for fid in doc.get("shared_file_ids") or [] if fid in wanted)
        return borrowed

    # --- the reaper's reads -----------------------------------------------------------------------
    def find_unpublished_stages(self, stage: StageName) -> list[tuple[str, StoredStage]]:
        """``(job id, stage)`` of active jobs whose ``stage`` is queued but its request was not taken by the broker."""
        p = _stage_path(stage)
        query = {"status": _ACTIVE, f"{p}.status": "queued", f"{p}.unpublished": True}
        return [(d["_id"], _stage_of(d, stage)) for d in self.jobs.find(query, {"_id": 1, p: 1})]

    def find_due_retries(
        self, stage: StageName, now: datetime, *, job_id: str | None = None
    ) -> list[tuple[str, StoredStage]]:
        """``(job id, stage)`` of active jobs whose queued ``stage`` waits for a retry due by ``now``.

        The stage holds ``retry_at``, ``attempt`` and ``last_error``. ``job_id`` limits it to one job.
        """
        p = _stage_path(stage)
        query: dict[str, Any] = {"status": _ACTIVE, f"{p}.status": "queued", f"{p}.retry_at": {"$lte": now}}
        if job_id is not None:
            query["_id"] = job_id
        projection = {"_id": 1, f"{p}.retry_at": 1, f"{p}.attempt": 1, f"{p}.last_error": 1}
        return [(d["_id"], _stage_of(d, stage)) for d in self.jobs.find(query, projection)]

    def find_expired_leases(self, stage: StageName, now: datetime) -> list[tuple[str, StoredStage]]:
        """``(job id, stage)`` of active jobs whose running ``stage``'s lease expired by ``now``.

        The stage holds ``lease_id``, ``attempt`` and ``worker_id``.
        """
        p = _stage_path(stage)
        docs = self.jobs.find(
            {"status": _ACTIVE, f"{p}.status": "running", f"{p}.lease_expires_at": {"$lte": now}},
            {"_id": 1, f"{p}.lease_id": 1, f"{p}.attempt": 1, f"{p}.worker_id": 1},
        )
        return [(d["_id"], _stage_of(d, stage)) for d in docs]

    def find_unqueued_new_jobs(self, created_before: datetime) -> list[str]:
        """Ids of active jobs created at or before ``created_before`` whose ``sfm`` stage is still ``pending``."""
        query = {"status": _ACTIVE, "stages.sfm.status": "pending", "created_at": {"$lte": created_before}}
        return [d["_id"] for d in self.jobs.find(query, {"_id": 1})]

    def find_pending_after_sfm(self, stage: StageName) -> list[str]:
        """Ids of active jobs whose ``sfm`` succeeded while ``stage`` is still pending."""
        p = _stage_path(stage)
        docs = self.jobs.find(
            {"status": _ACTIVE, "stages.sfm.status": "succeeded", f"{p}.status": "pending"}, {"_id": 1}
        )
        return [d["_id"] for d in docs]

    def find_unclaimed_stages(self, stage: StageName, queued_before: datetime) -> list[tuple[str, StoredStage]]:
        """``(job id, stage)`` of active jobs whose ``stage`` is queued (no retry) since ``queued_before`` or earlier.

        The stage holds ``queued_at``.
        """
        p = _stage_path(stage)
        docs = self.jobs.find(
            {
                "status": _ACTIVE,
                f"{p}.status": "queued",
                f"{p}.retry_at": None,
                f"{p}.queued_at": {"$lte": queued_before},
            },
            {"_id": 1, f"{p}.queued_at": 1},
        )
        return [(d["_id"], _stage_of(d, stage)) for d in docs]

    def find_quiet_active_jobs(self, updated_before: datetime) -> list[str]:
        """Ids of active jobs not written since ``updated_before`` or earlier."""
        docs = self.jobs.find({"status": _ACTIVE, "updated_at": {"$lte": updated_before}}, {"_id": 1})
        return [d["_id"] for d in docs]

    # --- writes -----------------------------------------------------------------------------------
    def insert_job(self, job: StoredJob) -> None:
        """Store a new job, its document built from the model.

        Raises ``pymongo.errors.DuplicateKeyError`` when the id or the owner's idempotency key is taken.
        """
        self.jobs.insert_one(to_document(job))

    def delete_job(self, job_id: str) -> None:
        """Delete the job document (its files are the caller's to delete)."""
        self.jobs.delete_one({"_id": job_id})

    def queue_stage(
        self,
        job_id: str,
        stage: StageName,
        now: datetime,
        *,
        message_id: str,
        message: str,
        expect: Mapping[str, Any],
    ) -> StoredStage | None:
        """Mark a stage of an active job ``queued`` for the request ``message_id``, when ``expect`` still holds.

        Args:
            job_id: the job.
            stage: the stage to queue.
            now: the current time (``queued_at``, ``updated_at``).
            message_id: the id of the request about to be published.
            message: the stage's message while it waits.
            expect: stage field -> the value it must still hold (``{"status": "pending"}``,
                ``{"status": "queued", "retry_at": ...}``); the write is conditioned on them.

        Returns:
            The stage as written, or None when the job or stage no longer matched.
        """
        p = _stage_path(stage)
        doc = self.jobs.find_one_and_update(
            {"_id": job_id, "status": _ACTIVE, **{f"{p}.{name}": value for name, value in expect.items()}},
            {
                "$set": {
                    f"{p}.status": "queued",
                    f"{p}.queued_at": now,
                    f"{p}.retry_at": None,
                    f"{p}.published_message_id": message_id,
                    f"{p}.unpublished": False,
                    f"{p}.message": message,
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _stage_of(doc, stage)

    def set_stage_unpublished(self, job_id: str, stage: StageName, message_id: str, unpublished: bool) -> None:
        """Record whether the broker took request ``message_id`` of a stage still queued for it."""
        p = _stage_path(stage)
        self.jobs.update_one(
            {"_id": job_id, f"{p}.status": "queued", f"{p}.published_message_id": message_id},
            {"$set": {f"{p}.unpublished": unpublished}, "$inc": {"version": 1}},
        )

    def claim_stage(
        self,
        job_id: str,
        stage: StageName,
        now: datetime,
        *,
        worker_id: str,
        message_id: str,
        lease_id: str,
        lease_expires_at: datetime,
        max_attempts: int,
    ) -> StoredStage | None:
        """Grant a lease on a stage that is ``queued``, or ``running`` with an expired lease; never a live lease.

        The job becomes ``running`` and the stage's ``attempt`` is incremented; no grant when the
        stage already used ``max_attempts``, nor while a retry waits out its backoff (``retry_at`` in the
        future): a stray copy of an earlier message (a broker redelivery, a duplicate) must not start the
        retry early; the reaper publishes it when it is due.

        Returns:
            The stage as written (its new ``attempt``, its ``options``), or None when not granted.
        """
        p = _stage_path(stage)
        takeovers: list[dict[str, Any]] = [
            {f"{p}.status": "queued", f"{p}.retry_at": None},
            {f"{p}.status": "queued", f"{p}.retry_at": {"$lte": now}},
            {f"{p}.status": "running", f"{p}.lease_expires_at": {"$lte": now}},
        ]
        doc = self.jobs.find_one_and_update(
            {"_id": job_id, "status": _ACTIVE, f"{p}.attempt": {"$lt": max_attempts}, "$or": takeovers},
            {
                "$set": {
                    "status": "running",
                    "updated_at": now,
                    f"{p}.status": "running",
                    f"{p}.lease_id": lease_id,
                    f"{p}.lease_expires_at": lease_expires_at,
                    f"{p}.worker_id": worker_id,
                    f"{p}.message_id": message_id,
                    f"{p}.started_at": now,
                    f"{p}.heartbeat_at": now,
                    f"{p}.retry_at": None,
                    f"{p}.progress": 0.0,
                    f"{p}.rate": None,
                    f"{p}.message": f"started on {worker_id}",
                },
                "$inc": {f"{p}.attempt": 1, "version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _stage_of(doc, stage)

    def renew_lease(
        self,
        job_id: str,
        stage: StageName,
        lease_id: str,
        now: datetime,
        *,
        lease_expires_at: datetime,
        progress: float,
        message: str,
        capture: CaptureReport | None = None,
        rate: float | None = None,
    ) -> bool:
        """A heartbeat: extend the running stage's lease ``lease_id`` and record progress (and the job's capture check).

        Returns:
            Whether ``lease_id`` was the current lease of the running stage of an active job.
        """
        p = _stage_path(stage)
        fields: dict[str, Any] = {
            f"{p}.progress": progress,
            f"{p}.message": message,
            f"{p}.heartbeat_at": now,
            f"{p}.lease_expires_at": lease_expires_at,
            "updated_at": now,
        }
        if capture is not None:  # the capture check (sfm): the job's `capture`, as soon as known
            fields["capture"] = capture.model_dump(mode="json")
        if rate is not None:  # the worker's smoothed progress rate: the running stage's ETA
            fields[f"{p}.rate"] = rate
        doc = self.jobs.find_one_and_update(
            {"_id": job_id, "status": _ACTIVE, f"{p}.lease_id": lease_id, f"{p}.status": "running"},
            {"$set": fields, "$inc": {"version": 1}},
            projection={"_id": 1},
        )
        return doc is not None

    def release_stage(self, job_id: str, stage: StageName, lease_id: str, now: datetime) -> bool:
        """The holder of ``lease_id`` gives it back: the stage is ``queued`` again and its grant returned (``attempt`` − 1).

        Returns:
            Whether ``lease_id`` was the current lease of the running stage of an active job.
        """
        p = _stage_path(stage)
        doc = self.jobs.find_one_and_update(
            {"_id": job_id, "status": _ACTIVE, f"{p}.lease_id": lease_id, f"{p}.status": "running"},
            {
                "$set": {
                    f"{p}.status": "queued",
                    f"{p}.lease_id": None,
                    f"{p}.lease_expires_at": None,
                    f"{p}.queued_at": now,
                    f"{p}.retry_at": None,
                    f"{p}.progress": 0.0,
                    f"{p}.rate": None,
                    f"{p}.message": "waiting for a worker (the last one stopped)",
                    "updated_at": now,
                },
                "$inc": {f"{p}.attempt": -1, "version": 1},
            },
            projection={"_id": 1},
        )
        return doc is not None

    def succeed_stage(
        self,
        job_id: str,
        stage: StageName,
        lease_id: str,
        now: datetime,
        *,
        metrics: dict[str, Any],
        artifacts: list[StoredFile],
    ) -> StoredJob | None:
        """Record the success of the running stage held by ``lease_id``, with its metrics and artifacts.

        Returns:
            The job as written, or None when ``lease_id`` was not the running stage's current lease.
        """
        p = _stage_path(stage)
        doc = self.jobs.find_one_and_update(
            {"_id": job_id, "status": _ACTIVE, f"{p}.lease_id": lease_id, f"{p}.status": "running"},
            {
                "$set": {
                    f"{p}.status": "succeeded",
                    f"{p}.progress": 1.0,
                    f"{p}.message": "done",
                    f"{p}.finished_at": now,
                    f"{p}.metrics": metrics,
                    f"{p}.artifacts": [to_document(f) for f in artifacts],
                    f"{p}.error": None,
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return StoredJob.model_validate(doc) if doc else None

    def _end_attempt(
        self,
        job_id: str,
        stage: StageName,
        lease_id: str | None,
        now: datetime,
        fields: dict[str, Any],
        *,
        expired: bool,
    ) -> bool:
        p = _stage_path(stage)
        query: dict[str, Any] = {"_id": job_id, "status": _ACTIVE, f"{p}.lease_id": lease_id, f"{p}.status": "running"}
        if expired:
            query[f"{p}.lease_expires_at"] = {"$lte": now}
        update = {f"{p}.{name}": value for name, value in fields.items()}
        res = self.jobs.update_one(
            query, {"$set": {**update, f"{p}.lease_expires_at": None, "updated_at": now}, "$inc": {"version": 1}}
        )
        return bool(res.modified_count)

    def requeue_attempt(
        self,
        job_id: str,
        stage: StageName,
        lease_id: str | None,
        now: datetime,
        *,
        error: StoredError,
        retry_at: datetime,
        message: str,
        lease_expired: bool = False,
    ) -> bool:
        """End the running attempt held by ``lease_id`` with a retry: the stage is ``queued`` until ``retry_at``.

        Args:
            job_id: the job.
            stage: the stage.
            lease_id: the lease the attempt ran under.
            now: the current time.
            error: why the attempt ended (the stage's ``last_error``).
            retry_at: when the next attempt may be published.
            message: the stage's message while it waits.
            lease_expired: also require the lease to have expired by ``now`` (the reaper).

        Returns:
            Whether the write applied (False: the lease moved on, or the job ended).
        """
        fields = {"status": "queued", "retry_at": retry_at, "last_error": to_document(error), "message": message}
        return self._end_attempt(job_id, stage, lease_id, now, fields, expired=lease_expired)

    def fail_attempt(
        self,
        job_id: str,
        stage: StageName,
        lease_id: str | None,
        now: datetime,
        *,
        error: StoredError,
        lease_expired: bool = False,
    ) -> bool:
        """End the running attempt held by ``lease_id`` and the stage with it: ``failed`` with ``error``.

        Args:
            job_id: the job.
            stage: the stage.
            lease_id: the lease the attempt ran under.
            now: the current time (``finished_at``).
            error: the stage's error; its message becomes the stage's message.
            lease_expired: also require the lease to have expired by ``now`` (the reaper).

        Returns:
            Whether the write applied (False: the lease moved on, or the job ended).
        """
        fields = {"status": "failed", "error": to_document(error), "finished_at": now, "message": error.message}
        return self._end_attempt(job_id, stage, lease_id, now, fields, expired=lease_expired)

    def update_job_at_version(
        self,
        job_id: str,
        version: int,
        *,
        job_fields: Mapping[str, Any],
        stage_fields: Mapping[str, Mapping[str, Any]],
    ) -> bool:
        """Set fields of the job and of its stages, only if the job is still at the ``version`` it was read at.

        Args:
            job_id: the job.
            version: the ``version`` the caller's decision was based on.
            job_fields: job field -> new value (``status``, ``finished_at``, ``updated_at``).
            stage_fields: stage name -> {stage field -> new value}.

        Returns:
            Whether the write applied (False: another writer got in between; read again and retry).
        """
        update = dict(job_fields)
        for stage, fields in stage_fields.items():
            update.update({f"stages.{stage}.{name}": value for name, value in fields.items()})
        res = self.jobs.update_one({"_id": job_id, "version": version}, {"$set": update, "$inc": {"version": 1}})
        return bool(res.modified_count)
