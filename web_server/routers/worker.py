"""The worker API (``/internal/v1``), as ``shared/worker_api.py`` documents it; worker token required."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from shared.messages import StageName
from shared.worker_api import (
    ArtifactInfo,
    ClaimRequest,
    Heartbeat,
    HeartbeatReply,
    Lease,
    Release,
    ResultAck,
    StageResult,
    WorkerAnnouncement,
)
from web_server.artifact_names import content_type, is_stage_artifact
from web_server.deps import OrchestratorDep, QueuePositionsDep, SettingsDep, StoreDep, require_worker
from web_server.downloads import file_response
from web_server.orchestration import LeaseConflictError, RejectedError
from web_server.problems import ApiError, Problem
from web_server.store import utcnow

router = APIRouter(prefix="/internal/v1", tags=["worker"], dependencies=[Depends(require_worker)])

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BATCH = 1024 * 1024
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong worker token"},
    409: {"model": Problem, "description": "not the stage's current lease (code says why): drop the work"},
}

LeaseHeader = Annotated[str, Header(alias="X-Lease-Id", min_length=1)]


@contextlib.contextmanager
def _refusals_as_problems() -> Iterator[None]:
    """Answer the orchestrator's refusals as problem+json: 409 for a lease conflict, else its status."""
    try:
        yield
    except LeaseConflictError as exc:
        raise ApiError(409, exc.code, exc.detail) from exc
    except RejectedError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc


@router.post("/workers", status_code=204, response_class=Response, responses={401: _ERRORS[401]})
def announce_worker(body: WorkerAnnouncement, store: StoreDep) -> Response:
    """A training worker says what it trains on; ``/v1/capabilities`` advertises the latest announcement."""
    store.record_worker(body.worker_id, body.stage, body.device, utcnow())
    return Response(status_code=204)


@router.post("/jobs/{job_id}/stages/{stage}/claim", response_model=Lease, responses=_ERRORS)
def claim_stage(
    job_id: str, stage: StageName, body: ClaimRequest, orchestrator: OrchestratorDep, positions: QueuePositionsDep
) -> Lease:
    """Claim the stage for the message the worker received; the lease's ``attempt`` is the n-th grant."""
    with _refusals_as_problems():
        lease = orchestrator.claim(job_id, stage, body, utcnow())
    positions.invalidate()  # the stage left its queue: every position behind it moved up
    return lease


@router.post("/jobs/{job_id}/stages/{stage}/heartbeat", response_model=HeartbeatReply, responses=_ERRORS)
def heartbeat(job_id: str, stage: StageName, body: Heartbeat, orchestrator: OrchestratorDep) -> HeartbeatReply:
    """Record progress and renew the lease; ``cancelled`` tells the worker to stop."""
    with _refusals_as_problems():
        return orchestrator.heartbeat(job_id, stage, body, utcnow())


@router.get(
    "/jobs/{job_id}/inputs/{name}",
    response_class=Response,
    responses={**_ERRORS, 200: {"content": {"application/octet-stream": {}}, "description": "the file"}},
)
def get_input(
    job_id: str,
    name: str,
    lease_id: LeaseHeader,
    orchestrator: OrchestratorDep,
    store: StoreDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """Stream ``input`` (the uploaded video) or an earlier stage's artifact (``sfm.tar``)."""
    with _refusals_as_problems():
        stored = orchestrator.input_file(job_id, lease_id, name)
    return file_response(store, stored, range_header=range_header, if_none_match=None)


@router.put(
    "/jobs/{job_id}/stages/{stage}/artifacts/{name}",
    response_model=ArtifactInfo,
    status_code=201,
    responses={
        **_ERRORS,
        400: {"model": Problem, "description": "the SHA-256 differs"},
        413: {"model": Problem, "description": "ARTIFACT_TOO_LARGE"},
    },
)
async def put_artifact(
    job_id: str,
    stage: StageName,
    name: str,
    request: Request,
    lease_id: LeaseHeader,
    sha256: Annotated[str, Header(alias="X-Content-SHA256")],
    orchestrator: OrchestratorDep,
    store: StoreDep,
    settings: SettingsDep,
) -> ArtifactInfo:
    """Stream an artifact into the file store; kept only when its SHA-256 matches the header.

    A body over ``settings.max_artifact_bytes`` is refused with 413 ``ARTIFACT_TOO_LARGE`` as soon as
    the limit is passed, and nothing is kept.
    """
    if not is_stage_artifact(stage, name):
        raise ApiError(422, "INVALID_ARTIFACT_NAME", f"The {stage} stage has no artifact named {name!r}.")
    expected = sha256.strip().lower()
    if not _SHA256.match(expected):
        raise ApiError(400, "BAD_REQUEST", "X-Content-SHA256 must be 64 hex digits.")
    with _refusals_as_problems():
        await run_in_threadpool(orchestrator.require_lease, job_id, stage, lease_id)
    metadata = {
        "job_id": job_id,
        "name": name,
        "stage": stage,
        "lease_id": lease_id,
        "content_type": content_type(name),
    }
    upload = store.open_upload(name, metadata)
    buffer = bytearray()
    try:
        async for chunk in request.stream():
            buffer += chunk
            if upload.length + len(buffer) > settings.max_artifact_bytes:
                raise ApiError(
                    413,
                    "ARTIFACT_TOO_LARGE",
                    f"The artifact is larger than the server's limit of {settings.max_artifact_bytes} bytes.",
                )
            if len(buffer) >= _BATCH:
                await run_in_threadpool(upload.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await run_in_threadpool(upload.write, bytes(buffer))
        actual = upload.sha256
        if actual != expected:
            raise ApiError(400, "DIGEST_MISMATCH", f"The body's SHA-256 is {actual}, not {expected}; upload it again.")
        await run_in_threadpool(upload.close)
    except BaseException:
        await run_in_threadpool(upload.abort)
        raise
    return ArtifactInfo(name=name, size=upload.length, sha256=actual)


@router.post("/jobs/{job_id}/stages/{stage}/result", response_model=ResultAck, responses=_ERRORS)
def post_result(job_id: str, stage: StageName, body: StageResult, orchestrator: OrchestratorDep) -> ResultAck:
    """Record the attempt's outcome; the worker acks its message once this answers 200."""
    with _refusals_as_problems():
        return orchestrator.record_result(job_id, stage, body, utcnow())


@router.post("/jobs/{job_id}/stages/{stage}/release", status_code=204, response_class=Response, responses=_ERRORS)
def release_stage(job_id: str, stage: StageName, body: Release, orchestrator: OrchestratorDep) -> Response:
    """Give the lease back unfinished (the worker is stopping): the stage is queued for the next claim."""
    with _refusals_as_problems():
        orchestrator.release(job_id, stage, body.lease_id, utcnow())
    return Response(status_code=204)
