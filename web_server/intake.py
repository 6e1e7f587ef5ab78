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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import Request
from pymongo.errors import DuplicateKeyError
from starlette.concurrency import run_in_threadpool

from shared.errors import ErrorCode, StageError
from shared.messages import STAGES
from shared.settings import Settings
from shared.video import VideoLimits, probe_video_header
from web_server.artifact_names import INPUT_TYPES
from web_server.capabilities import default_preset
from web_server.job_form import parse_job_form, request_fingerprint
from web_server.metrics import Metrics
from web_server.models import JobCreate, StoredFile, StoredJob, StoredStage
from web_server.orchestration import Orchestrator
from web_server.problems import ApiError
from web_server.store import Store, utcnow
from web_server.uploads import VideoSpool, receive_upload
from web_server.webhook_events import initial_state
from web_server.webhook_targets import WebhookUrlError, check_at_creation

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


def replayed(first: StoredJob, fingerprint: str, *, unfingerprinted_matches: bool = True) -> StoredJob:
    """The first job for a repeated ``Idempotency-Key``, when the request is the same; else 422 ``IDEMPOTENCY_KEY_REUSED``.

    Args:
        first: the job stored with the key.
        fingerprint: the repeated request's fingerprint.
        unfingerprinted_matches: whether a job stored without a fingerprint (an upload made before
            fingerprints) matches any request: True for uploads; a run passes False, so a key of
            such an upload is never answered with the upload as if it were the run.
    """
    if first.request_sha256 is None and unfingerprinted_matches:
        return first
    if first.request_sha256 != fingerprint:
        raise key_reused()
    return first


def _discard(store: Store, spool: VideoSpool, job_id: str) -> None:
    """Delete what the upload wrote, unless its job was created (a failure after the insert keeps the file)."""
    if spool.upload is not None and not store.job_exists(job_id):
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


async def _checked_webhook(
    form: JobCreate, api_key_id: str | None, settings: Settings, store: Store
) -> dict[str, Any] | None:
    """The job's ``webhook`` sub-document, or None without ``webhook_url``.

    422 ``VALIDATION_ERROR`` for a malformed URL or a caller without an API key, 422
    ``WEBHOOK_URL_NOT_ALLOWED`` for a host that resolves to an address webhooks may not target, 422
    ``WEBHOOK_SECRET_MISSING`` for a key without a webhook secret.
    """
    if form.webhook_url is None:
        return None
    try:
        await check_at_creation(form.webhook_url, settings.webhook_networks)
    except WebhookUrlError as exc:
        raise ApiError(422, exc.code, exc.message) from exc
    if api_key_id is None:
        raise ApiError(422, "VALIDATION_ERROR", "webhook_url: needs an API key; its webhook secret signs the events.")
    if not await run_in_threadpool(store.webhook_secret, api_key_id):
        raise ApiError(
            422,
            "WEBHOOK_SECRET_MISSING",
            "Your API key has no webhook secret; an admin creates one with "
            "'vid2scene keys rotate-webhook-secret KEY_ID'.",
        )
    return initial_state(form.webhook_url, api_key_id)


@dataclass(frozen=True)
class _JobRequest:
    """What a new job takes from its request.

    Attributes:
        job_id: the id chosen for the job (its upload's files carry it).
        owner: the caller.
        form: the validated form fields.
        resolved: stage name -> the stage's resolved options (preset + overrides).
        fingerprint: :func:`web_server.job_form.request_fingerprint` of the request.
        idempotency_key: the ``Idempotency-Key`` header, or None.
        webhook: the job's ``webhook`` sub-document (:func:`_checked_webhook`), or None.
    """

    job_id: str
    owner: str
    form: JobCreate
    resolved: dict[str, dict[str, Any]]
    fingerprint: str
    idempotency_key: str | None
    webhook: dict[str, Any] | None = None


def _new_job(request: _JobRequest, input_file: StoredFile, video: dict[str, Any]) -> StoredJob:
    """The job to insert: ``queued``, every requested stage ``pending``, stamped with the input's time."""
    now = input_file.created_at
    return StoredJob(
        id=request.job_id,
        owner=request.owner,
        name=request.form.name,
        methods=list(request.form.methods),
        preset=request.form.preset,
        status="queued",
        version=0,
        created_at=now,
        updated_at=now,
        idempotency_key=request.idempotency_key or None,
        request_sha256=request.fingerprint,
        input=input_file,
        video=video,
        stages={stage: StoredStage(options=request.resolved[stage]) for stage in STAGES if stage in request.resolved},
        webhook=request.webhook,
    )


def _count_refusal(metrics: Metrics, exc: ApiError) -> None:
    codes = {"INVALID_VIDEO": "invalid_video", "VIDEO_TOO_LONG": "too_long"}
    statuses = {413: "too_large", 408: "stalled"}
    metrics.count_upload(codes.get(exc.code) or statuses.get(exc.status, "rejected"))


async def _create(
    store: Store,
    orchestrator: Orchestrator,
    spool: VideoSpool,
    job_request: _JobRequest,
    video: dict[str, Any],
) -> StoredJob:
    """Finish the GridFS file as ``input.<container>`` and insert the job of ``job_request`` pointing at it.

    A lost ``Idempotency-Key`` race deletes this upload's file and answers as a replay would.
    """
    upload = spool.upload
    assert upload is not None
    name = f"input.{video['container']}"
    content_type = INPUT_TYPES[video["container"]]
    await run_in_threadpool(upload.close, filename=name, metadata={"name": name, "content_type": content_type})
    now = utcnow()
    input_file = StoredFile(
        name=name,
        stage="upload",
        content_type=content_type,
        created_at=now,
        file_id=upload.file_id,
        size=upload.length,
        sha256=upload.sha256,
    )
    job = _new_job(job_request, input_file, video)
    try:
        return await run_in_threadpool(orchestrator.create_job, job, now)
    except DuplicateKeyError:  # a concurrent request with the same key won the race
        winner = await run_in_threadpool(store.find_job_by_idempotency_key, job.owner, job.idempotency_key)
        if winner is None:
            raise
        await run_in_threadpool(spool.discard)
        return replayed(winner, job_request.fingerprint)


async def accept_upload(
    request: Request,
    owner: str,
    idempotency_key: str | None,
    *,
    settings: Settings,
    store: Store,
    orchestrator: Orchestrator,
    metrics: Metrics,
    api_key_id: str | None = None,
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
        api_key_id: the caller's API key (None when keys are off); its webhook secret signs the job's webhooks.

    Returns:
        The job. Raises :class:`ApiError` for every refusal; nothing of the upload stays then.
    """
    first = None
    if idempotency_key:
        first = await run_in_threadpool(store.find_job_by_idempotency_key, owner, idempotency_key)
    job_id = uuid.uuid4().hex
    upload = None if first is not None else store.open_upload("input", {"job_id": job_id, "stage": "upload"})
    spool = VideoSpool.open(settings.data_dir / "uploads", upload, keep_file=first is None)
    try:
        try:
            received = await receive_upload(
                request, spool, max_video_bytes=settings.max_upload_bytes, idle_timeout_s=settings.upload_idle_timeout_s
            )
            preset = await run_in_threadpool(default_preset, settings, store)
            form, resolved = parse_job_form(received.fields, default_preset=preset)
            fingerprint = request_fingerprint(spool.sha256, form)
            if first is not None:
                return replayed(first, fingerprint)
            video = await _checked_video(spool, settings, received.has_video)
            webhook = await _checked_webhook(form, api_key_id, settings, store)
        except ApiError as exc:
            _count_refusal(metrics, exc)
            raise
        job_request = _JobRequest(job_id, owner, form, resolved, fingerprint, idempotency_key, webhook)
        job = await _create(store, orchestrator, spool, job_request, video)
    except BaseException:
        with anyio.CancelScope(shield=True):  # clean up even when the request is being cancelled
            await run_in_threadpool(_discard, store, spool, job_id)
        raise
    finally:
        spool.remove_file()
    if job.id == job_id:
        metrics.count_upload("accepted", job.input.size)
        logger.info("job %s created for %s (%s, %d bytes)", job.id, owner, job.input.name, job.input.size)
    return job
