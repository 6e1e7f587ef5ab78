"""``/v1/jobs``: submit a video, read, list, cancel and delete jobs."""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from web_server.deps import (
    ApiKeyIdDep,
    MetricsDep,
    OrchestratorDep,
    OwnerDep,
    QueuePositionsDep,
    SettingsDep,
    StoreDep,
    UploadSlotsDep,
    get_queue_positions,
    get_settings,
    get_stage_history,
)
from web_server.intake import accept_upload
from web_server.models import ACTIVE_JOB, JobList, JobPublic, JobStatus, RunCreate, RunList, StoredJob
from web_server.problems import ApiError, Problem, not_found
from web_server.runs import start_run
from web_server.store import Store, as_utc, utcnow
from web_server.uploads import VIDEO_FIELD
from web_server.views import job_public
from web_server.webhook_targets import MAX_URL_LENGTH

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_AUTH: dict[int | str, dict[str, Any]] = {401: {"model": Problem, "description": "missing or invalid API key"}}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such job (or not yours)"}}


def owned_job(store: Store, job_id: str, owner: str) -> StoredJob:
    """The caller's job; 404 for a missing job and for another owner's alike."""
    job = store.get_owned_job(job_id, owner)
    if job is None:
        raise not_found()
    return job


def _accepted(job: JobPublic) -> JSONResponse:
    return JSONResponse(job.model_dump(mode="json"), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [VIDEO_FIELD],
                    "properties": {
                        "video": {"type": "string", "format": "binary", "description": "MP4, MOV, MKV or WebM"},
                        "methods": {"type": "string", "enum": ["gs", "nerf", "gs,nerf"], "default": "gs"},
                        "preset": {
                            "type": "string",
                            "enum": ["preview", "standard", "high"],
                            "description": "default: GET /v1/capabilities' default_preset (standard with a GPU, "
                            "preview without)",
                        },
                        "name": {"type": "string", "maxLength": 200},
                        "options": {"type": "string", "description": 'JSON, e.g. {"gs": {"iterations": 3000}}'},
                        "webhook_url": {
                            "type": "string",
                            "format": "uri",
                            "maxLength": MAX_URL_LENGTH,
                            "description": "http(s) URL that receives the job's events, signed with the API key's "
                            "webhook secret (see the API docs, 'Webhooks')",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    openapi_extra=_UPLOAD_BODY,
    responses={
        **_AUTH,
        408: {"model": Problem, "description": "UPLOAD_TIMEOUT: the body stalled"},
        413: {"model": Problem, "description": "VIDEO_TOO_LARGE"},
        415: {"model": Problem, "description": "not multipart/form-data"},
        422: {
            "model": Problem,
            "description": "INVALID_VIDEO, VIDEO_TOO_LONG, INVALID_OPTIONS, IDEMPOTENCY_KEY_REUSED, "
            "WEBHOOK_URL_NOT_ALLOWED, WEBHOOK_SECRET_MISSING or VALIDATION_ERROR",
        },
        429: {"model": Problem, "description": "TOO_MANY_UPLOADS (with Retry-After)"},
    },
)
async def create_job(
    request: Request,
    owner: OwnerDep,
    settings: SettingsDep,
    store: StoreDep,
    orchestrator: OrchestratorDep,
    metrics: MetricsDep,
    slots: UploadSlotsDep,
    api_key_id: ApiKeyIdDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    """Upload a video and start a job: 202 with ``Location``.

    A repeated ``Idempotency-Key`` with the same request (video and fields) returns the first job;
    with a different request it is 422 ``IDEMPOTENCY_KEY_REUSED``.
    """
    with slots.hold(owner):
        job = await accept_upload(
            request,
            owner,
            idempotency_key,
            settings=settings,
            store=store,
            orchestrator=orchestrator,
            metrics=metrics,
            api_key_id=api_key_id,
        )
    return _accepted(public_job(request, job))


def public_job(request: Request, job: StoredJob) -> JobPublic:
    """The public view of ``job`` with this app's settings, queue positions and ETA history."""
    return job_public(
        job,
        positions=get_queue_positions(request),
        history=get_stage_history(request),
        settings=get_settings(request),
        now=utcnow(),
    )


def _encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = f"{as_utc(created_at).isoformat()}|{job_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, job_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), job_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, "VALIDATION_ERROR", "cursor: not a cursor returned by this API.") from exc


@router.get("", response_model=JobList, responses=_AUTH)
def list_jobs(
    request: Request,
    owner: OwnerDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[JobStatus | None, Query()] = None,
) -> JobList:
    """The caller's jobs, newest first."""
    before = _decode_cursor(cursor) if cursor else None
    found = store.list_owner_jobs(owner, limit=limit + 1, status=status, before=before)  # one more: another page?
    jobs = found[:limit]
    next_cursor = _encode_cursor(jobs[-1].created_at, jobs[-1].id) if len(found) > limit else None
    return JobList(items=[public_job(request, j) for j in jobs], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic, responses={**_AUTH, **_NOT_FOUND})
def get_job(job_id: str, request: Request, owner: OwnerDep, store: StoreDep) -> JobPublic:
    """One job: status, stages, error, queue position, artifacts with signed URLs."""
    return public_job(request, owned_job(store, job_id, owner))


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {
            "model": Problem,
            "description": "JOB_FINISHED: the job already ended (succeeded, partial, failed, cancelled)",
        },
    },
)
def cancel_job(
    job_id: str,
    request: Request,
    owner: OwnerDep,
    store: StoreDep,
    orchestrator: OrchestratorDep,
    positions: QueuePositionsDep,
) -> JobPublic:
    """Stop a queued or running job; workers stop at their next heartbeat. Files and record stay.

    A job that already ended, a cancelled one included, answers 409 ``JOB_FINISHED``: cancel stops a
    job once; the job's ``status`` says how it ended.
    """
    _refuse_if_ended(owned_job(store, job_id, owner))
    job = orchestrator.cancel(job_id, utcnow())
    if job is None:
        raise not_found()
    positions.invalidate()
    if job.status != "cancelled":  # it ended between the read above and the cancel
        _refuse_if_ended(job)
    return public_job(request, job)


def _refuse_if_ended(job: StoredJob) -> None:
    """409 ``JOB_FINISHED`` unless the job is queued or running."""
    if job.status not in ACTIVE_JOB:
        raise ApiError(409, "JOB_FINISHED", f"The job has already {_ENDED_AS[job.status]}; there is nothing to cancel.")


#: How an ended job's status reads after "The job has already ...".
_ENDED_AS: dict[str, str] = {
    "succeeded": "succeeded",
    "partial": "ended (some stages succeeded)",
    "failed": "failed",
    "cancelled": "been cancelled",
}


@router.delete("/{job_id}", status_code=204, response_class=Response, responses={**_AUTH, **_NOT_FOUND})
def delete_job(
    job_id: str, owner: OwnerDep, store: StoreDep, orchestrator: OrchestratorDep, positions: QueuePositionsDep
) -> Response:
    """Cancel the job if it runs, then delete its files and its record."""
    owned_job(store, job_id, owner)
    orchestrator.delete(job_id, utcnow())
    positions.invalidate()
    return Response(status_code=204)


@router.post(
    "/{job_id}/runs",
    status_code=202,
    response_model=JobPublic,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {
            "model": Problem,
            "description": "JOB_NOT_FINISHED (the job is queued or running), NO_SFM_RESULT (its sfm stage did not "
            "succeed) or RUN_LIMIT_REACHED (VID2SCENE_MAX_RUNS_PER_JOB)",
        },
        422: {"model": Problem, "description": "INVALID_OPTIONS, IDEMPOTENCY_KEY_REUSED or VALIDATION_ERROR"},
    },
)
def create_run(
    job_id: str,
    body: RunCreate,
    request: Request,
    owner: OwnerDep,
    settings: SettingsDep,
    store: StoreDep,
    orchestrator: OrchestratorDep,
    positions: QueuePositionsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    """Train again on a finished job's stored video and SfM result: a new job (a *run*), 202 with ``Location``.

    No upload and no second SfM: the run's ``sfm`` stage is the source's result, unless ``options.sfm``
    changes an SfM option, in which case SfM runs again from the stored video. ``preset`` defaults to
    the source's. The run has its own id, status, stages and artifacts; ``GET /v1/jobs/{id}/runs``
    lists the runs of a capture side by side.
    """
    source = owned_job(store, job_id, owner)
    job = start_run(
        store, orchestrator, settings, source, body, owner=owner, idempotency_key=idempotency_key, now=utcnow()
    )
    positions.invalidate()
    return _accepted(public_job(request, job))


@router.get("/{job_id}/runs", response_model=RunList, responses={**_AUTH, **_NOT_FOUND})
def list_runs(job_id: str, request: Request, owner: OwnerDep, settings: SettingsDep, store: StoreDep) -> RunList:
    """The runs of the job's capture: the uploaded job first, then every run of it, oldest first.

    Works from any member of the family (the uploaded job or one of its runs).
    """
    job = owned_job(store, job_id, owner)
    root = job.family_root
    family = store.job_family(owner, root)
    return RunList(root_job=root, max_runs=settings.max_runs_per_job, items=[public_job(request, j) for j in family])
