"""A typed HTTP client of the public vid2scene API (``/v1``).

Uploads stream from disk (never whole in memory) with a progress callback; downloads stream to a
``.part`` file and resume with ``Range`` after an interruption; ``wait`` follows the job's
Server-Sent Events and falls back to polling when the stream is unavailable. Every error answer
(``application/problem+json``) becomes a :class:`ServerError` carrying its stable ``code``.

Example:
    >>> client = Vid2SceneClient("http://127.0.0.1:8000", api_key="...")  # doctest: +SKIP
    >>> job = client.submit(Path("orbit.mp4"), methods=("gs",), preset="preview")  # doctest: +SKIP
    >>> job = client.wait(job.id)  # doctest: +SKIP
    >>> client.download_all(job.id, Path("out"))  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

JobStatus = Literal["queued", "running", "succeeded", "partial", "failed", "cancelled"]
StageStatus = Literal["pending", "queued", "running", "succeeded", "failed", "cancelled"]

#: Job states after which nothing changes any more.
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "partial", "failed", "cancelled"})

#: Bytes read from disk or the network per step of an upload or download.
CHUNK_BYTES = 1024 * 1024

#: ``on_bytes(done, total)``: progress of an upload or a download (``total`` is None when unknown).
BytesProgressFn = Callable[[int, int | None], None]


class ServerError(Exception):
    """An error answer of the API (``application/problem+json``, RFC 9457), or an unreachable server.

    Args:
        status: the HTTP status (0 when the server could not be reached).
        code: the stable machine code (``INVALID_VIDEO``, ``NOT_FOUND``, ...).
        message: the human explanation (the problem's ``detail``, else its ``title``).
        body: the whole problem document.
    """

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message
        self.body = dict(body or {})

    @classmethod
    def from_response(cls, response: httpx.Response) -> ServerError:
        """The error an answer with status >= 400 stands for (problem+json, plain JSON or text)."""
        body: dict[str, Any] = {}
        try:
            parsed = response.json()
            if isinstance(parsed, dict):
                body = parsed
        except ValueError:
            pass
        code = str(body.get("code") or _code_for_status(response.status_code))
        message = str(body.get("detail") or body.get("title") or response.text[:500] or response.reason_phrase)
        if not body.get("detail") and isinstance(body.get("errors"), list):
            message = f"{message}: {json.dumps(body['errors'])[:500]}"
        return cls(response.status_code, code, message, body)


def _code_for_status(status: int) -> str:
    return {
        400: "BAD_REQUEST",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        409: "CONFLICT",
        413: "VIDEO_TOO_LARGE",
        422: "VALIDATION_ERROR",
        503: "UNAVAILABLE",
    }.get(status, f"HTTP_{status}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class StageFailure(_Model):
    """Why a stage failed: a stable code, a message a user can act on, and whether it is retried."""

    code: str
    message: str = ""
    retryable: bool = False


class StageView(_Model):
    """One stage of a job as the API shows it."""

    name: str = Field(validation_alias=AliasChoices("name", "stage"))
    status: str = "pending"
    progress: float = 0.0
    message: str = ""
    attempt: int = 0
    worker_id: str | None = None
    error: StageFailure | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    eta_seconds: float | None = Field(default=None, description="estimated seconds left (None: a server without ETA)")

    @field_validator("metrics", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return value or {}


class ArtifactView(_Model):
    """A downloadable file of a job; ``url`` is signed and valid without the API key until it expires."""

    name: str
    url: str | None = None
    size: int | None = None
    stage: str | None = None


class JobView(_Model):
    """A job as ``GET /v1/jobs/{id}`` shows it."""

    id: str = Field(validation_alias=AliasChoices("id", "job_id"))
    status: str
    name: str | None = None
    methods: list[str] = Field(default_factory=list)
    preset: str | None = None
    stages: list[StageView] = Field(default_factory=list)
    artifacts: list[ArtifactView] = Field(default_factory=list)
    error: StageFailure | None = None
    queue_position: int | None = None
    from_job: str | None = None
    root_job: str | None = None
    sfm_reused_from: str | None = None
    eta_seconds: float | None = Field(default=None, description="estimated seconds left (None: a server without ETA)")

    @field_validator("stages", mode="before")
    @classmethod
    def _stages_as_list(cls, value: Any) -> Any:
        if isinstance(value, dict):  # {"sfm": {...}, "gs": {...}} → [{"name": "sfm", ...}, ...]
            return [{"name": name, **(body or {})} for name, body in value.items()]
        return value or []

    @field_validator("artifacts", mode="before")
    @classmethod
    def _artifacts_as_list(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [
                {"name": name, **(body if isinstance(body, dict) else {"url": body})} for name, body in value.items()
            ]
        return [{"name": item} if isinstance(item, str) else item for item in (value or [])]

    @property
    def done(self) -> bool:
        """The job reached a final state."""
        return self.status in TERMINAL_STATUSES

    def stage(self, name: str) -> StageView | None:
        """The stage called ``name``, or None when the job did not request it."""
        return next((s for s in self.stages if s.name == name), None)

    def failure_message(self) -> str:
        """The errors of the job and its failed stages, one line each (empty when there are none)."""
        lines = [f"{self.error.code}: {self.error.message}"] if self.error else []
        lines += [f"{s.name}: {s.error.code}: {s.error.message}" for s in self.stages if s.error]
        return "\n".join(dict.fromkeys(lines))


class JobPage(_Model):
    """One page of ``GET /v1/jobs``; pass ``next_cursor`` back to read the next one."""

    jobs: list[JobView] = Field(default_factory=list, validation_alias=AliasChoices("jobs", "items"))
    next_cursor: str | None = Field(default=None, validation_alias=AliasChoices("next_cursor", "cursor"))


class RunPage(_Model):
    """``GET /v1/jobs/{id}/runs``: the uploaded job first, then its runs, oldest first."""

    root_job: str
    max_runs: int
    jobs: list[JobView] = Field(default_factory=list, validation_alias=AliasChoices("jobs", "items"))


class _CountingFile:
    """Reads a file in chunks and reports how many bytes went out."""

    def __init__(self, path: Path, on_bytes: BytesProgressFn | None) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.on_bytes = on_bytes

    def chunks(self) -> Iterator[bytes]:
        done = 0
        with self.path.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                done += len(chunk)
                yield chunk
                if self.on_bytes is not None:
                    self.on_bytes(done, self.size)


def _multipart_body(
    fields: dict[str, str], file_field: str, upload: _CountingFile, content_type: str
) -> tuple[str, int, Iterator[bytes]]:
    """A streamed ``multipart/form-data`` body with its exact length.

    Returns:
        ``(content_type_header, content_length, chunks)``; the file part comes last and is read lazily.
    """
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    )
    # The file's own name never matters to the server (it sniffs the bytes); send a neutral one.
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="upload{upload.path.suffix}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        yield from upload.chunks()
        yield tail

    return f"multipart/form-data; boundary={boundary}", len(head) + upload.size + len(tail), chunks()


class Vid2SceneClient:
    """The public API of one vid2scene server.

    Args:
        server: base URL, e.g. ``http://127.0.0.1:8000``.
        api_key: the caller's API key (sent as ``Authorization: Bearer``); None for a local server
            that runs without keys.
        timeout_s: connect/read timeout of one call (uploads and downloads stream without a total limit).
        transport: an httpx transport (tests pass an ASGI transport to talk to an app in-process).
    """

    def __init__(
        self,
        server: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls --------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ServerError(0, "SERVER_UNREACHABLE", f"cannot reach {self.server}: {exc}") from exc
        if response.status_code >= 400:
            raise ServerError.from_response(response)
        return response

    def submit(
        self,
        video: Path,
        *,
        methods: Sequence[str] = ("gs",),
        preset: str = "standard",
        options: dict[str, Any] | None = None,
        name: str | None = None,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        on_bytes: BytesProgressFn | None = None,
    ) -> JobView:
        """Upload a video and create a job (``POST /v1/jobs``).

        Args:
            video: the video file; streamed from disk.
            methods: training stages to run after SfM (``gs``, ``nerf``).
            preset: ``preview``, ``standard`` or ``high``.
            options: per-stage overrides, e.g. ``{"gs": {"iterations": 3000}}``.
            name: a label for the job.
            webhook_url: where the server POSTs the job's signed events (see the API's Webhooks section).
            idempotency_key: a retried upload with the same key returns the first job.
            on_bytes: called with ``(bytes_sent, total)`` as the upload proceeds.

        Returns:
            The created job (status ``queued``).
        """
        fields = {"methods": ",".join(methods), "preset": preset}
        if options:
            fields["options"] = json.dumps(options)
        if name:
            fields["name"] = name
        if webhook_url:
            fields["webhook_url"] = webhook_url
        content_type, length, body = _multipart_body(
            fields, "video", _CountingFile(Path(video), on_bytes), "application/octet-stream"
        )
        headers = {"Content-Type": content_type, "Content-Length": str(length)}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = self._request(
            "POST", "/v1/jobs", content=body, headers=headers, timeout=httpx.Timeout(None, connect=10.0)
        )
        return JobView.model_validate(response.json())

    def rerun(
        self,
        job_id: str,
        *,
        methods: Sequence[str],
        preset: str | None = None,
        options: dict[str, Any] | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobView:
        """Train again on a finished job's stored video and SfM result (``POST /v1/jobs/{id}/runs``).

        Args:
            job_id: the finished job to start from.
            methods: training stages of the new run (``gs``, ``nerf``).
            preset: ``preview``, ``standard`` or ``high``; None keeps the source job's.
            options: per-stage overrides; an ``sfm`` override that changes an option runs SfM again.
            name: a label for the run (None keeps the source job's).
            idempotency_key: a retried request with the same key returns the first run.

        Returns:
            The new run, a job of its own (status ``queued``).
        """
        body: dict[str, Any] = {"methods": list(methods)}
        if preset is not None:
            body["preset"] = preset
        if options:
            body["options"] = options
        if name is not None:
            body["name"] = name
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self._request("POST", f"/v1/jobs/{job_id}/runs", json=body, headers=headers)
        return JobView.model_validate(response.json())

    def runs(self, job_id: str) -> RunPage:
        """The runs of a job's capture, the uploaded job first (``GET /v1/jobs/{id}/runs``)."""
        return RunPage.model_validate(self._request("GET", f"/v1/jobs/{job_id}/runs").json())

    def get(self, job_id: str) -> JobView:
        """One job (``GET /v1/jobs/{id}``)."""
        return JobView.model_validate(self._request("GET", f"/v1/jobs/{job_id}").json())

    def list(self, *, limit: int = 20, cursor: str | None = None, status: str | None = None) -> JobPage:
        """The caller's jobs, newest first (``GET /v1/jobs``)."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if status:
            params["status"] = status
        body = self._request("GET", "/v1/jobs", params=params).json()
        return JobPage.model_validate({"jobs": body} if isinstance(body, list) else body)

    def cancel(self, job_id: str) -> JobView:
        """Stop a job (``POST /v1/jobs/{id}/cancel``); its record and finished files stay."""
        response = self._request("POST", f"/v1/jobs/{job_id}/cancel")
        return JobView.model_validate(response.json()) if response.content else self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Cancel a job if it runs, then delete its files and record (``DELETE /v1/jobs/{id}``)."""
        self._request("DELETE", f"/v1/jobs/{job_id}")

    def events(self, job_id: str) -> Iterator[JobView]:
        """Snapshots of one job from its Server-Sent Events stream, until the server closes it.

        Raises:
            ServerError: the stream could not be opened.
        """
        try:
            with self._http.stream(
                "GET",
                f"/v1/jobs/{job_id}/events",
                headers={"Accept": "text/event-stream"},
                timeout=httpx.Timeout(None, connect=10.0),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServerError.from_response(response)
                for data in _sse_data(response.iter_lines()):
                    try:
                        yield JobView.model_validate_json(data)
                    except ValueError:
                        continue  # a keep-alive or an event that is not a job snapshot
        except httpx.TransportError as exc:
            raise ServerError(0, "SERVER_UNREACHABLE", f"event stream of {job_id} broke: {exc}") from exc

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobView], None] | None = None,
        timeout_s: float | None = None,
        poll_s: float = 1.0,
        use_events: bool = True,
    ) -> JobView:
        """Follow a job until it ends; returns its final state.

        Follows the SSE stream; when it cannot be opened or breaks, polls ``GET /v1/jobs/{id}``
        every ``poll_s`` seconds instead (and checks the state after the stream closes).

        Args:
            job_id: the job.
            on_update: called with every new snapshot.
            timeout_s: give up after this long (raises ``TimeoutError``); None waits for ever.
            poll_s: polling interval.
            use_events: try the SSE stream first.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def expired() -> bool:
            return deadline is not None and time.monotonic() > deadline

        if use_events and timeout_s is None:
            try:
                for job in self.events(job_id):
                    if on_update is not None:
                        on_update(job)
                    if job.done:
                        return job
            except ServerError as exc:
                if exc.status in (401, 403, 404):
                    raise
        while True:
            job = self.get(job_id)
            if on_update is not None:
                on_update(job)
            if job.done:
                return job
            if expired():
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def download(self, job_id: str, name: str, dest: Path, *, on_bytes: BytesProgressFn | None = None) -> Path:
        """Download one artifact to ``dest``, resuming a partial ``dest.part`` with ``Range``.

        Args:
            job_id: the job.
            name: the artifact name (``scene.ply``, ``flythrough-gs.mp4``, ...).
            dest: the file to write; written to ``<dest>.part`` first and renamed when complete.
            on_bytes: called with ``(bytes_on_disk, total)`` as the download proceeds.

        Returns:
            ``dest``.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        url = f"/v1/jobs/{job_id}/artifacts/{name}"
        try:
            with self._http.stream("GET", url, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0)) as response:
                if response.status_code == 416 and have:  # the part is already whole
                    part.replace(dest)
                    return dest
                if response.status_code >= 400:
                    response.read()
                    raise ServerError.from_response(response)
                if response.status_code == 206 and _range_start(response) != have:
                    raise ServerError(206, "BAD_RANGE", f"{name}: the server answered another range than asked")
                if response.status_code == 206:
                    mode, done = "ab", have
                else:  # the server ignored the range: start over
                    mode, done = "wb", 0
                total = _total_size(response, done)
                with part.open(mode) as f:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        f.write(chunk)
                        done += len(chunk)
                        if on_bytes is not None:
                            on_bytes(done, total)
        except httpx.TransportError as exc:
            raise ServerError(0, "SERVER_UNREACHABLE", f"download of {name} broke at a partial file: {exc}") from exc
        if total is not None and done != total:
            raise ServerError(0, "INCOMPLETE_DOWNLOAD", f"{name}: got {done} of {total} bytes; run the download again")
        os.replace(part, dest)
        return dest

    def download_all(
        self,
        job_id: str,
        out_dir: Path,
        *,
        names: Sequence[str] | None = None,
        on_file: Callable[[str], BytesProgressFn | None] | None = None,
    ) -> builtins.list[Path]:  # builtins: the method `list` shadows the type in the class body
        """Download every artifact of a job (or only ``names``) into ``out_dir``.

        Args:
            job_id: the job.
            out_dir: the folder to write into (created).
            names: the artifacts to fetch; None fetches all that the job lists.
            on_file: called with each artifact's name before it downloads; may return a byte
                progress callback for that file.

        Returns:
            The written paths, in the job's artifact order.
        """
        listed = [a.name for a in self.get(job_id).artifacts]
        wanted = listed if names is None else [n for n in listed if n in set(names)]
        paths = []
        for name in wanted:
            on_bytes = on_file(name) if on_file is not None else None
            paths.append(self.download(job_id, name, Path(out_dir) / Path(name).name, on_bytes=on_bytes))
        return paths


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data`` payloads of a Server-Sent Events stream (multi-line data joined with newlines)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


def _range_start(response: httpx.Response) -> int | None:
    """The first byte of a 206 answer, from ``Content-Range: bytes START-END/TOTAL``."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _total_size(response: httpx.Response, already: int) -> int | None:
    """The whole file's size: from ``Content-Range`` of a 206, else ``already + Content-Length``."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    if length is None:
        return None
    return already + int(length) if response.status_code == 206 else int(length)
