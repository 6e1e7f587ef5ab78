"""Receiving ``POST /v1/jobs``: the multipart body parsed as it streams in, the video part handed to
a :class:`VideoSpool` (a temporary file for the probe and the GridFS file, written in one pass while
the next bytes arrive) with the size limit enforced on the way, the small form fields kept in memory.

FastAPI's ``UploadFile`` is not used on purpose: it spools the whole body before the handler runs,
so a limit could only be checked after the fact. A client that sends nothing for
``upload_idle_timeout_s`` gets 408 ``UPLOAD_TIMEOUT`` and its upload is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from shared.errors import ErrorCode
from web_server.problems import ApiError
from web_server.store import FileUpload

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FORM_FIELDS = ("methods", "preset", "name", "options", "webhook_url")
VIDEO_FIELD = "video"
MAX_FIELD_BYTES = 64 * 1024
#: The longest multipart boundary (RFC 2046, section 5.1.1).
MAX_BOUNDARY_CHARS = 70
#: Slack above the video limit for the multipart framing and the small fields.
FORM_OVERHEAD_BYTES = 1024 * 1024
#: Video bytes handed to the spool at once; one batch is written while the next arrives.
_FLUSH = 256 * 1024


class UploadTooLargeError(Exception):
    """The video part passed the limit."""


@dataclass
class ReceivedUpload:
    """A parsed upload: the form fields and whether (and how many bytes of) a video part came."""

    fields: dict[str, str] = field(default_factory=dict)
    has_video: bool = False
    video_bytes: int = 0


class VideoSpool:
    """Where the video part's bytes go, in one pass: a temporary file (for the probe) and the GridFS file.

    Either may be absent: a replayed idempotent request only needs the SHA-256. :meth:`write`
    runs in a worker thread, one call at a time.

    Args:
        path: the temporary file to write, or None.
        upload: the GridFS file to write, or None.
    """

    def __init__(self, path: Path | None, upload: FileUpload | None) -> None:
        self.path = path
        self.upload = upload
        self._file = path.open("wb") if path is not None else None
        self._digest = hashlib.sha256() if upload is None else None

    @classmethod
    def open(cls, upload_dir: Path, upload: FileUpload | None, *, keep_file: bool) -> VideoSpool:
        """A spool with a fresh temporary file in ``upload_dir`` (created if missing) when ``keep_file``."""
        path = None
        if keep_file:
            upload_dir.mkdir(parents=True, exist_ok=True)
            path = upload_dir / f"{uuid.uuid4().hex}.part"
        return cls(path, upload)

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the bytes written so far."""
        if self.upload is not None:
            return self.upload.sha256
        assert self._digest is not None
        return self._digest.hexdigest()

    def write(self, data: bytes) -> None:
        """Append ``data`` to the file and the GridFS file (or only hash it)."""
        if self._file is not None:
            self._file.write(data)
        if self.upload is not None:
            self.upload.write(data)
        else:
            assert self._digest is not None
            self._digest.update(data)

    def close_file(self) -> None:
        """Flush and close the temporary file (it stays for the probe)."""
        if self._file is not None:
            self._file.close()

    def remove_file(self) -> None:
        """Close and delete the temporary file."""
        self.close_file()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Delete the temporary file and everything written to GridFS."""
        self.remove_file()
        if self.upload is not None:
            self.upload.abort()


class _PartCollector:
    """Multipart callbacks: routes each part's bytes to a field buffer or the video file buffer."""

    def __init__(self, max_video_bytes: int) -> None:
        self.max_video_bytes = max_video_bytes
        self.result = ReceivedUpload()
        self.pending = bytearray()  # video bytes not yet handed to the spool
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name: str | None = None
        self._field = bytearray()
        self.closed = False  # the closing boundary was seen

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._field = bytearray()

    def _header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        kind, params = parse_options_header(self._headers.get("content-disposition"))
        name = params.get(b"name")
        if kind != b"form-data" or name is None:
            raise ApiError(422, "VALIDATION_ERROR", "Every part needs 'Content-Disposition: form-data; name=...'.")
        self._name = name.decode("utf-8", "replace")
        if self._name not in (*FORM_FIELDS, VIDEO_FIELD):
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                f"Unknown form field {self._name!r}; send 'video' and optionally {', '.join(FORM_FIELDS)}.",
            )
        if self._name in self.result.fields or (self._name == VIDEO_FIELD and self.result.has_video):
            raise ApiError(422, "VALIDATION_ERROR", f"The form field {self._name!r} was sent twice.")
        if self._name == VIDEO_FIELD:
            self.result.has_video = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name == VIDEO_FIELD:
            self.result.video_bytes += end - start
            if self.result.video_bytes > self.max_video_bytes:
                raise UploadTooLargeError
            self.pending.extend(data[start:end])
        else:
            self._field.extend(data[start:end])
            if len(self._field) > MAX_FIELD_BYTES:
                raise ApiError(
                    422, "VALIDATION_ERROR", f"The form field {self._name!r} is over {MAX_FIELD_BYTES} bytes."
                )

    def _part_end(self) -> None:
        if self._name is not None and self._name != VIDEO_FIELD:
            self.result.fields[self._name] = self._field.decode("utf-8", "replace")

    def _end(self) -> None:
        self.closed = True


def too_large(max_bytes: int) -> ApiError:
    """413 ``VIDEO_TOO_LARGE``."""
    return ApiError(
        413,
        "VIDEO_TOO_LARGE",
        f"The video is larger than the limit of {max_bytes} bytes. Trim it or lower its resolution, then upload it again.",
    )


def stalled(idle_timeout_s: float) -> ApiError:
    """408 ``UPLOAD_TIMEOUT``, closing the connection (the rest of the body is never read)."""
    return ApiError(
        408,
        ErrorCode.UPLOAD_TIMEOUT.value,
        f"The upload stalled: nothing arrived for {idle_timeout_s:g} s, so it was dropped. Check the connection "
        "and send it again.",
        headers={"Connection": "close"},
    )


async def _body_chunks(request: Request, idle_timeout_s: float) -> AsyncIterator[bytes]:
    """The request body as it arrives; :func:`stalled` when nothing arrives for ``idle_timeout_s``."""
    while True:
        try:
            message = await asyncio.wait_for(request.receive(), idle_timeout_s)
        except TimeoutError:
            raise stalled(idle_timeout_s) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


def _multipart_boundary(request: Request, max_video_bytes: int) -> bytes:
    """The body's boundary after the header checks: 415 not multipart, 422 a boundary too long, 413 declared too large."""
    kind, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the upload as multipart/form-data.")
    if len(boundary) > MAX_BOUNDARY_CHARS:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"The multipart boundary is {len(boundary)} characters long; at most {MAX_BOUNDARY_CHARS} are allowed "
            "(RFC 2046). Let your HTTP client choose the boundary.",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and len(declared) < 20 and int(declared) > max_video_bytes + FORM_OVERHEAD_BYTES:
        raise too_large(max_video_bytes)
    return boundary


async def receive_upload(
    request: Request, spool: VideoSpool, *, max_video_bytes: int, idle_timeout_s: float
) -> ReceivedUpload:
    """Parse the request body as it arrives, handing the video part to ``spool``.

    Each batch of video bytes is written (in a thread) while the next ones arrive; memory holds
    at most two batches whatever the size.

    Args:
        request: the ``multipart/form-data`` request.
        spool: receives the video part's bytes (the caller discards it on any error).
        max_video_bytes: the largest video accepted.
        idle_timeout_s: the longest wait for the next bytes of the body.

    Returns:
        The fields and whether a video part came. Raises :class:`ApiError`: 415 for another
        content type, 413 ``VIDEO_TOO_LARGE`` (as soon as the limit is passed), 408
        ``UPLOAD_TIMEOUT`` for a stalled body, 422 for a malformed body (including one cut off
        before its closing boundary).
    """
    boundary = _multipart_boundary(request, max_video_bytes)
    collector = _PartCollector(max_video_bytes)
    parser = MultipartParser(boundary, collector.callbacks())
    in_flight: asyncio.Future[None] | None = None

    async def hand_over() -> None:
        nonlocal in_flight
        if in_flight is not None:
            await in_flight
        batch = bytes(collector.pending)
        collector.pending.clear()
        in_flight = asyncio.ensure_future(run_in_threadpool(spool.write, batch))

    try:
        async for chunk in _body_chunks(request, idle_timeout_s):
            parser.write(chunk)
            if len(collector.pending) >= _FLUSH:
                await hand_over()
        parser.finalize()
        if not collector.closed:
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                "The multipart body ends before its closing boundary: the upload was cut off. Send it again.",
            )
        if collector.pending:
            await hand_over()
        if in_flight is not None:
            await in_flight
            in_flight = None
    except UploadTooLargeError:
        raise too_large(max_video_bytes) from None
    except FormParserError as exc:
        raise ApiError(422, "VALIDATION_ERROR", f"The multipart body is malformed: {exc}") from exc
    finally:
        if in_flight is not None:  # let the last write finish before the caller discards the spool
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await in_flight
        spool.close_file()
    return collector.result
