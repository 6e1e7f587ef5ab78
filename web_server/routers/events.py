"""Server-Sent Events: a job snapshot on every change, fed by polling MongoDB (no change streams).

``GET /v1/jobs/{id}/events`` follows one job and closes once it has ended; ``GET /v1/events``
follows all of the caller's jobs on one connection. Each event is ``event: job`` with the job's
public JSON as ``data`` and its ``version`` as ``id``; a deleted job sends ``event: deleted``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from web_server.deps import OwnerDep, StoreDep
from web_server.models import TERMINAL_JOB, StoredJob
from web_server.problems import Problem
from web_server.routers.jobs import owned_job, public_job
from web_server.store import utcnow

router = APIRouter(prefix="/v1", tags=["events"])

KEEPALIVE_S = 15.0
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "a stream of `job` events"},
    401: {"model": Problem, "description": "missing or invalid API key"},
}


def _event(kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head + f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def _snapshot(request: Request, job: StoredJob) -> str:
    return _event("job", public_job(request, job).model_dump(mode="json"), job.version)


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={**_STREAM, 404: {"model": Problem, "description": "no such job"}},
)
def job_events(job_id: str, request: Request, owner: OwnerDep, store: StoreDep) -> StreamingResponse:
    """Follow one job: a snapshot now and on every change; the stream ends after the job ends."""
    owned_job(store, job_id, owner)
    poll_s: float = request.app.state.sse_poll_s

    async def stream() -> AsyncIterator[str]:
        seen = -1
        last_sent = time.monotonic()
        while not await request.is_disconnected():
            job = await run_in_threadpool(store.get_owned_job, job_id, owner)
            if job is None:
                yield _event("deleted", {"id": job_id})
                return
            if job.version != seen:
                seen = job.version
                yield await run_in_threadpool(_snapshot, request, job)
                last_sent = time.monotonic()
                if job.status in TERMINAL_JOB:
                    return
            elif time.monotonic() - last_sent > KEEPALIVE_S:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(poll_s)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_SSE_HEADERS)


@router.get("/events", response_class=StreamingResponse, responses=_STREAM)
def all_events(request: Request, owner: OwnerDep, store: StoreDep) -> StreamingResponse:
    """Follow all the caller's jobs: snapshots of the active ones now, then of every job that changes."""
    poll_s: float = request.app.state.sse_poll_s

    async def stream() -> AsyncIterator[str]:
        versions: dict[str, int] = {}
        since: datetime | None = None  # None: the active jobs (the first pass)
        last_sent = time.monotonic()
        while not await request.is_disconnected():
            started = utcnow()
            if since is None:
                jobs = await run_in_threadpool(store.list_active_owner_jobs, owner)
            else:
                jobs = await run_in_threadpool(store.list_owner_jobs_updated_since, owner, since)
            for job in jobs:
                if versions.get(job.id) != job.version:
                    versions[job.id] = job.version
                    yield await run_in_threadpool(_snapshot, request, job)
                    last_sent = time.monotonic()
            if time.monotonic() - last_sent > KEEPALIVE_S:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            # Writes stamp updated_at before they land; a second of slack catches the slow ones.
            since = started - timedelta(seconds=1)
            await asyncio.sleep(poll_s)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_SSE_HEADERS)
