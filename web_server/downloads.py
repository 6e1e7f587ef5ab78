"""Streaming a stored file as an HTTP response: ``Range`` (206/416), ``ETag``, conditional GET."""

from __future__ import annotations

import re

from fastapi.responses import Response, StreamingResponse

from web_server.artifact_names import INLINE_TYPES
from web_server.models import StoredFile
from web_server.problems import ApiError
from web_server.store import Store

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: Byte positions with more digits than this lie past any file (10^18 B = 1 EB); they are read as
#: "past the end" without converting them (``int()`` refuses strings of more than 4,300 digits).
_MAX_DIGITS = 18
_PAST_ANY_FILE = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    """The value of a byte position, or :data:`_PAST_ANY_FILE` for one too long to be a real offset."""
    return int(digits) if len(digits) <= _MAX_DIGITS else _PAST_ANY_FILE


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range ``[start, end)`` asked for by a single-range ``Range`` header.

    Args:
        header: the ``Range`` header, or None.
        size: the file size.

    Returns:
        None to send the whole file (no header, a multi-range or a non-byte unit: RFC 9110 lets a
        server ignore those); raises 416 when the range lies outside the file.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if first:
        start = _position(first)
        end = min(_position(last) + 1, size) if last else size
        if last and _position(last) < start:
            return None
    else:
        start, end = max(size - _position(last), 0), size
    if start >= size or end <= start:
        raise ApiError(
            416, "RANGE_NOT_SATISFIABLE", f"The file has {size} bytes.", headers={"Content-Range": f"bytes */{size}"}
        )
    return start, end


def file_response(
    store: Store, stored: StoredFile, *, range_header: str | None, if_none_match: str | None, head: bool = False
) -> Response:
    """The stored file, whole (200), partial (206) or not modified (304).

    Args:
        store: where the file's bytes are.
        stored: the file's record.
        range_header: the request's ``Range`` header, or None.
        if_none_match: the request's ``If-None-Match`` header, or None.
        head: answer a ``HEAD`` request: the same status and headers (``Content-Length`` of what a GET
            would send), no body, and nothing read from the store.
    """
    etag = f'"{stored.sha256}"'
    disposition = "inline" if stored.content_type in INLINE_TYPES else "attachment"
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'{disposition}; filename="{stored.name}"',
        "Cache-Control": "private, max-age=3600",
        # a browser never sniffs an artifact into something else, and never runs one (scene.html) on our origin
        "X-Content-Type-Options": "nosniff",
    }
    if disposition == "attachment":
        headers["Content-Security-Policy"] = "sandbox"
    if if_none_match and etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    span = parse_range(range_header, stored.size)
    start, end = span or (0, stored.size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{stored.size}"
    if head:
        return Response(status_code=status, media_type=stored.content_type, headers=headers)
    return StreamingResponse(
        store.iter_file(stored.file_id, start, end), status_code=status, media_type=stored.content_type, headers=headers
    )
