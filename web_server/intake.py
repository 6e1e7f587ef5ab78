"""``POST /v1/jobs`` from body to job: receive, validate, probe, store, create — and leave nothing behind on failure.

The video goes to GridFS while it is received (:class:`web_server.uploads.VideoSpool`); the
temporary file beside it only serves the header probe. Whatever fails after the first byte was
written — a refused video, a bad field, a lost race for an ``Idempotency-Key``, a failed insert —
the GridFS chunks and files document are deleted, unless the job document already exists (then
the job owns its file). A repeated ``Idempotency-Key`` is bound to the request's fingerprint: the
same request gets the first job, a different one 422 ``IDEMPOTENCY_KEY_REUSED``.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from fastapi import Request
from pymongo.errors import DuplicateKeyError
from starlette.concurrency import run_in_threadpool

from shared.errors import ErrorCode, StageError
from shared.messages import STAGES
from shared.settings import Settings
from shared.video import VideoLimits, probe_video_header
from web_server.artifact_names import INPUT_TYPES
from web_server.job_form import parse_job_form, request_fingerprint
from web_server.metrics import Metrics
from web_server.models import JobCreate, StoredFile, StoredJob
from web_server.orchestration import Orchestrator
from web_server.problems import ApiError
from web_server.store import Store, utcnow
from web_server.uploads import VideoSpool, receive_upload

logger = logging.getLogger(__name__)


def video_limits(settings: Settings) -> VideoLimits:
    """The upload check's limits from the settings."""
    return VideoLimits(
        max_frames=settings.max_video_frames,
        max_duration_s=settings.max_video_duration_s,
        max_pixel_rate=settings.max_video_pixel_rate,
    )


def _probe(path: Path, settings: Settings) -> dict[str, Any]:
    return probe_video_header(path, video_limits(settings)).model_dump(mode="json")


def key_reused() -> ApiError:
    """422 ``IDEMPOTENCY_KEY_REUSED``."""
    return ApiError(
        422,
        ErrorCode.IDEMPOTENCY_KEY_REUSED.value,
        "This Idempotency-Key was already used for a different request (another video or other form fields). "
        "Send a new key with a new request; resend the first request unchanged to get its job.",
    )


def _replayed(first: dict[str, Any], fingerprint: str) -> StoredJob:
    """The first job for a repeated key, when the request is the same (jobs stored without a fingerprint match any)."""
    if first.get("request_sha256", fingerprint) != fingerprint:
        raise key_reused()
    return StoredJob.model_validate(first)


def _discard(store: Store, spool: VideoSpool, job_id: str) -> None:
    """Delete what the upload wrote, unless its job was created (a failure after the insert keeps the file)."""
    if spool.upload is not None and store.jobs.find_one({"_id": job_id}, {"_id": 1}) is None:
        spool.discard()
    else:
        spool.remove_file()


async def _checked_video(spool: VideoSpool, settings: Settings, has_video: bool) -> dict[str, Any]:
    """The header probe of the received video; 422 ``INVALID_VIDEO``/``VIDEO_TOO_LONG`` or a missing part."""
    if not has_video or spool.path is None:
        raise ApiError(422, "VALIDATION_ERROR", "video: the 'video' file part is required.")
    if spool.path.stat().st_size == 0:
        raise ApiError(422, "INVALID_VIDEO", "The uploaded video is empty. Upload an MP4, MOV, MKV or WebM video.")
    try:
        return await run_in_threadpool(_probe, spool.path, settings)
    except StageError as exc:
        raise ApiError(422, exc.code.value, exc.message) from exc


def _job_document(
    job_id: str,
    owner: str,
    form: JobCreate,
    resolved: dict[str, dict[str, Any]],
    video: dict[str, Any],
    input_file: StoredFile,
) -> dict[str, Any]:
    now = input_file.created_at
    return {
        "_id": job_id,
        "owner": owner,
        "name": form.name,
        "methods": form.methods,
        "preset": form.preset,
        "status": "queued",
        "version": 0,
        "created_at": now,
        "updated_at": now,
        "finished_at": None,
        "input": input_file.model_dump(),
        "video": video,
        "stages": {
            stage: {"status": "pending", "options": resolved[stage], "attempt": 0, "progress": 0.0, "message": ""}
            for stage in STAGES
            if stage in resolved
        },
    }


async def accept_upload(
    request: Request,
    owner: str,
    idempotency_key: str | None,
    *,
    settings: Settings,
    store: Store,
    orchestrator: Orchestrator,
    metrics: Metrics,
) -> StoredJob:
    """Turn an upload request into a job (or the first job of its ``Idempotency-Key``).

    Args:
        request: the ``multipart/form-data`` request, its body not read yet.
        owner: the caller.
        idempotency_key: the ``Idempotency-Key`` header, if sent.
        settings: limits and the scratch folder.
        store: jobs and files.
        orchestrator: creates the job and queues ``sfm``.
        metrics: counts the outcome.

    Returns:
        The job. Raises :class:`ApiError` for every refusal; nothing of the upload stays then.
    """
    first = None
    if idempotency_key:
        first = await run_in_threadpool(store.jobs.find_one, {"owner": owner, "idempotency_key": idempotency_key})
    job_id = uuid.uuid4().hex
    upload = None if first is not None else store.open_upload("input", {"job_id": job_id, "stage": "upload"})
    spool = VideoSpool.open(settings.data_dir / "uploads", upload, keep_file=first is None)
    try:
        try:
            received = await receive_upload(
                request,
                spool,
                max_video_bytes=settings.max_upload_bytes,
                idle_timeout_s=settings.upload_idle_timeout_s,
            )
            form, resolved = parse_job_form(received.fields)
            fingerprint = request_fingerprint(spool.sha256, form)
            if first is not None:
                return _replayed(first, fingerprint)
            video = await _checked_video(spool, settings, received.has_video)
        except ApiError as exc:
            outcomes = {413: "too_large", 408: "stalled"}
            codes = {"INVALID_VIDEO": "invalid_video", "VIDEO_TOO_LONG": "too_long"}
            metrics.count_upload(codes.get(exc.code) or outcomes.get(exc.status, "rejected"))
            raise
        assert upload is not None
        name = f"input.{video['container']}"
        content_type = INPUT_TYPES[video["container"]]
        await run_in_threadpool(upload.close, filename=name, metadata={"name": name, "content_type": content_type})
        input_file = StoredFile(
            name=name,
            stage="upload",
            content_type=content_type,
            created_at=utcnow(),
            file_id=upload.file_id,
            size=upload.length,
            sha256=upload.sha256,
        )
        doc = _job_document(job_id, owner, form, resolved, video, input_file)
        doc["request_sha256"] = fingerprint
        if idempotency_key:
            doc["idempotency_key"] = idempotency_key
        try:
            job = await run_in_threadpool(orchestrator.create_job, doc, input_file.created_at)
        except DuplicateKeyError:  # a concurrent request with the same key won the race
            winner = await run_in_threadpool(store.jobs.find_one, {"owner": owner, "idempotency_key": idempotency_key})
            if winner is None:
                raise
            await run_in_threadpool(spool.discard)
            return _replayed(winner, fingerprint)
    except BaseException:
        await run_in_threadpool(_discard, store, spool, job_id)
        raise
    finally:
        spool.remove_file()
    metrics.count_upload("accepted", input_file.size)
    logger.info("job %s created for %s (%s, %d bytes)", job.id, owner, name, input_file.size)
    return job
