"""The workers' HTTP client for the worker API (``/internal/v1``, see :mod:`shared.worker_api`).

Every call carries ``Authorization: Bearer <worker token>``. While the server is unreachable (connection
refused, timeouts, 5xx, 429) a call is retried with backoff for up to ``retry_for_s`` seconds, then
raises :class:`ServerUnreachable`; once the worker's stop event is set, the retrying ends at once
with :class:`ClientStopped` (a stopping worker never waits out the budget). A 409 raises
:class:`LeaseLost` (the worker drops the work and acks the message); 401/403 raise
:class:`WorkerAuthError`; any other refusal raises :class:`WorkerApiError`.
Files move as streams: inputs are written to disk chunk by chunk, artifacts are sent from disk with
their SHA-256 in ``X-Content-SHA256``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from shared.backoff import Backoff
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

log = logging.getLogger(__name__)

API_PREFIX = "/internal/v1"
CHUNK_BYTES = 1024 * 1024

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")

#: Statuses that mean "the server is not (fully) there right now": retried with backoff.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class WorkerApiError(Exception):
    """The server refused a worker call.

    Attributes:
        status_code: the HTTP status (0 when no answer came).
        code: the problem body's ``code`` (e.g. ``STALE_LEASE``), or ``""``.
        detail: the problem body's ``detail`` or ``title``, or the raw text.
    """

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(f"{status_code} {code}: {detail}".strip())
        self.status_code = status_code
        self.code = code
        self.detail = detail


class LeaseLost(WorkerApiError):  # noqa: N818 - a state, not a failure of ours
    """409: the lease is not the stage's current one (stale attempt, cancelled, finished, job gone)."""


class WorkerAuthError(WorkerApiError):
    """401/403: the worker token is wrong; no call will succeed until the worker is reconfigured."""


class ServerUnreachable(WorkerApiError):  # noqa: N818 - names the condition
    """The server did not answer (or answered 5xx) for the whole retry budget."""


def _error_from(response: httpx.Response) -> WorkerApiError:
    code, detail = "", response.text[:500]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or "")
        detail = str(body.get("detail") or body.get("title") or detail)
    if response.status_code == 409:
        return LeaseLost(409, code, detail)
    if response.status_code in (401, 403):
        return WorkerAuthError(response.status_code, code, detail)
    return WorkerApiError(response.status_code, code, detail)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    for chunk in _file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def _download_name(response: httpx.Response, fallback: str) -> str:
    """The file name from ``Content-Disposition`` when it is a plain safe name, else ``fallback``."""
    match = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
    if match and _SAFE_FILE_NAME.match(match.group(1)):
        return match.group(1)
    return fallback


class WorkerClient:
    """A worker's connection to the web server.

    Args:
        server_url: the server's base URL (``http://web:8000``).
        token: the worker token.
        retry_for_s: how long a call keeps retrying while the server is unreachable.
        timeout_s: connect/read/write timeout of one HTTP attempt.
        transport: the httpx transport; ``None`` uses httpx's default HTTP transport.
        stop: the worker's stop event; once set, a failed call raises :class:`ClientStopped` instead
            of being retried (a first try is still made, so a finished stage can report its result).
    """

    def __init__(
        self,
        server_url: str,
        token: str,
        *,
        retry_for_s: float = 300.0,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.retry_for_s = retry_for_s
        self.stop = stop or threading.Event()
        self._http = httpx.Client(
            base_url=server_url.rstrip("/") + API_PREFIX,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
        )

    # --- the calls -------------------------------------------------------------------------------

    def claim(self, job_id: str, stage: StageName, request: ClaimRequest) -> Lease:
        """Ask for the stage's lease. Raises :class:`LeaseLost` when refused (409)."""
        return self._json("POST", f"{_stage_path(job_id, stage)}/claim", request, Lease)

    def announce(self, announcement: WorkerAnnouncement, *, retry_for_s: float = 10.0) -> None:
        """Tell the server what this worker trains on (``POST /internal/v1/workers``)."""

        def call() -> None:
            self._raise_for(self._http.post("/workers", json=announcement.model_dump(mode="json")))

        self._retrying("POST /workers", call, retry_for_s)

    def heartbeat(
        self, job_id: str, stage: StageName, beat: Heartbeat, *, retry_for_s: float | None = None
    ) -> HeartbeatReply:
        """Report progress and renew the lease; the reply says whether the job was cancelled."""
        return self._json("POST", f"{_stage_path(job_id, stage)}/heartbeat", beat, HeartbeatReply, retry_for_s)

    def report_result(self, job_id: str, stage: StageName, result: StageResult) -> ResultAck:
        """Report the attempt's outcome; once this returns the message may be acked."""
        return self._json("POST", f"{_stage_path(job_id, stage)}/result", result, ResultAck)

    def release(self, job_id: str, stage: StageName, lease_id: str, *, timeout_s: float = 2.0) -> bool:
        """Give the lease back unfinished (the worker is stopping); one try, never retried.

        Returns:
            Whether the server took it back (the stage is queued again). False when the server did
            not answer within ``timeout_s`` or refused (the lease then expires on its own).
        """
        path = f"{_stage_path(job_id, stage)}/release"
        try:
            response = self._http.post(path, json=Release(lease_id=lease_id).model_dump(mode="json"), timeout=timeout_s)
        except httpx.TransportError as exc:
            log.warning("POST %s failed (%s); the lease will expire on its own", path, exc)
            return False
        if response.status_code != 204:
            log.warning("POST %s answered %d: %s", path, response.status_code, response.text[:200])
            return False
        return True

    def fetch_input(self, job_id: str, name: str, lease_id: str, dest_dir: Path) -> Path:
        """Download a job input (``input``, ``sfm.tar``, ...) into ``dest_dir``, streamed to disk.

        Returns:
            The file written: named by the server's ``Content-Disposition`` when that is a plain
            file name (``input.mp4``), else ``name``. It appears only once complete.
        """
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = f"/jobs/{quote(job_id, safe='')}/inputs/{quote(name, safe='')}"

        def download() -> Path:
            with self._http.stream("GET", path, headers={"X-Lease-Id": lease_id}) as response:
                self._raise_for(response, read=True)
                target = dest_dir / _download_name(response, name)
                partial = target.with_name(target.name + ".part")
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        out.write(chunk)
            partial.replace(target)
            return target

        return self._retrying(f"GET {path}", download)

    def upload_artifact(self, job_id: str, stage: StageName, name: str, file: Path, lease_id: str) -> ArtifactInfo:
        """Upload an artifact from disk as a stream, with its SHA-256 for the server to check."""
        size, sha256 = file.stat().st_size, file_sha256(file)
        headers = {
            "X-Lease-Id": lease_id,
            "X-Content-SHA256": sha256,
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        }
        path = f"{_stage_path(job_id, stage)}/artifacts/{quote(name, safe='')}"

        def upload() -> ArtifactInfo:
            response = self._http.put(path, content=_file_chunks(file), headers=headers)
            self._raise_for(response)
            return ArtifactInfo.model_validate_json(response.content)

        return self._retrying(f"PUT {path}", upload)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: BaseModel, answer: type[_M], retry_for_s: float | None = None) -> _M:
        payload: dict[str, Any] = body.model_dump(mode="json")

        def call() -> _M:
            response = self._http.request(method, path, json=payload)
            self._raise_for(response)
            return answer.model_validate_json(response.content)

        return self._retrying(f"{method} {path}", call, retry_for_s)

    @staticmethod
    def _raise_for(response: httpx.Response, *, read: bool = False) -> None:
        if response.is_success:
            return
        if read:
            response.read()
        if response.status_code in _RETRY_STATUSES:
            raise _TransientError(f"{response.status_code} {response.text[:200]}")
        raise _error_from(response)

    def _retrying(self, what: str, call: Callable[[], _T], retry_for_s: float | None = None) -> _T:
        budget = self.retry_for_s if retry_for_s is None else retry_for_s
        deadline = time.monotonic() + budget
        backoff = Backoff(first=0.5, cap=15.0)
        while True:
            try:
                return call()
            except (httpx.TransportError, _TransientError) as exc:
                if self.stop.is_set():
                    raise ClientStopped(
                        0, "WORKER_STOPPING", f"{what}: {exc}; not retried, the worker is stopping"
                    ) from exc
                delay = min(backoff.next_delay(), max(0.0, deadline - time.monotonic()))
                if delay <= 0.0:
                    raise ServerUnreachable(0, "SERVER_UNREACHABLE", f"{what}: {exc}") from exc
                log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
                if self.stop.wait(delay):
                    raise ClientStopped(
                        0, "WORKER_STOPPING", f"{what}: {exc}; not retried, the worker is stopping"
                    ) from exc


class ClientStopped(WorkerApiError):  # noqa: N818 - names the condition
    """The worker is stopping: a call that failed was not retried (its message is given back)."""


class _TransientError(Exception):
    """A 5xx/429 answer: retried like a connection error."""


def _stage_path(job_id: str, stage: StageName) -> str:
    return f"/jobs/{quote(job_id, safe='')}/stages/{quote(stage, safe='')}"
