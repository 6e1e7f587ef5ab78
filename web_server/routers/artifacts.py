"""``GET`` and ``HEAD /v1/jobs/{id}/artifacts/{name}``: a job's file, by API key or by a signed URL."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from shared.settings import Settings
from web_server.artifact_names import ALL_NAMES
from web_server.deps import OptionalOwnerDep, SettingsDep, StoreDep
from web_server.downloads import file_response
from web_server.problems import ApiError, Problem, not_found
from web_server.signing import verify
from web_server.store import Store, utcnow
from web_server.views import find_file

router = APIRouter(prefix="/v1/jobs", tags=["artifacts"])


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "the file"},
    206: {"description": "the requested byte range"},
    304: {"description": "not modified (If-None-Match)"},
    401: {"model": Problem, "description": "neither an API key nor a signature"},
    403: {"model": Problem, "description": "INVALID_SIGNATURE: tampered or expired URL"},
    404: {"model": Problem, "description": "no such job or file"},
    416: {"model": Problem, "description": "RANGE_NOT_SATISFIABLE"},
}
ExpQuery = Annotated[int | None, Query(description="signed URL expiry, unix seconds")]
SigQuery = Annotated[str | None, Query(max_length=128, description="signed URL HMAC")]
RangeHeader = Annotated[str | None, Header(alias="Range")]
IfNoneMatchHeader = Annotated[str | None, Header(alias="If-None-Match")]


def artifact_response(
    store: Store,
    settings: Settings,
    owner: str | None,
    job_id: str,
    name: str,
    *,
    exp: int | None,
    sig: str | None,
    range_header: str | None,
    if_none_match: str | None,
    head: bool,
) -> Response:
    """Authorise by signature or API key, find the file, and answer it (or only its headers for ``HEAD``)."""
    if name not in ALL_NAMES:
        raise ApiError(404, "NOT_FOUND", f"{name!r} is not an artifact name; see the job's artifact list.")
    if exp is not None and sig is not None:
        if not verify(settings.signing_secret, job_id, name, exp, sig, utcnow()):
            raise ApiError(403, "INVALID_SIGNATURE", "The download link is invalid or expired; fetch the job again.")
        job = store.get_job(job_id)
    elif owner is not None:
        job = store.get_owned_job(job_id, owner)
    else:
        raise ApiError(
            401, "UNAUTHORIZED", "Send an API key or use the job's signed URL.", headers={"WWW-Authenticate": "Bearer"}
        )
    if job is None:
        raise not_found()
    stored = find_file(job, name)
    if stored is None:
        raise not_found("file")
    return file_response(store, stored, range_header=range_header, if_none_match=if_none_match, head=head)


@router.get("/{job_id}/artifacts/{name}", response_class=Response, responses=_RESPONSES)
def get_artifact(
    job_id: str,
    name: str,
    owner: OptionalOwnerDep,
    settings: SettingsDep,
    store: StoreDep,
    exp: ExpQuery = None,
    sig: SigQuery = None,
    range_header: RangeHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """Stream the file with ``Range`` (206), ``ETag``, ``Content-Length`` and ``Content-Disposition``."""
    return artifact_response(
        store,
        settings,
        owner,
        job_id,
        name,
        exp=exp,
        sig=sig,
        range_header=range_header,
        if_none_match=if_none_match,
        head=False,
    )


@router.head("/{job_id}/artifacts/{name}", response_class=Response, responses=_RESPONSES)
def head_artifact(
    job_id: str,
    name: str,
    owner: OptionalOwnerDep,
    settings: SettingsDep,
    store: StoreDep,
    exp: ExpQuery = None,
    sig: SigQuery = None,
    range_header: RangeHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """The headers a GET would answer (``Content-Length``, ``ETag``, ``Accept-Ranges``, ``Content-Type``), no body."""
    return artifact_response(
        store,
        settings,
        owner,
        job_id,
        name,
        exp=exp,
        sig=sig,
        range_header=range_header,
        if_none_match=if_none_match,
        head=True,
    )
