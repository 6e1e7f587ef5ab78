"""Streaming a stored file as an HTTP response: ``Range`` (206/416), ``ETag``, conditional GET."""

from __future__ import annotations

import re

from fastapi.responses import Response, StreamingResponse

from web_server.artifact_names import INLINE_TYPES
from web_server.models import StoredFile
from web_server.problems import ApiError
from web_server.store import Store

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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
        start = int(first)
        end = min(int(last) + 1, size) if last else size
        if last and int(last) < start:
            return None
    else:
        start, end = max(size - int(last), 0), size
    if start >= size or end <= start:
        raise ApiError(
            416, "RANGE_NOT_SATISFIABLE", f"The file has {size} bytes.", headers={"Content-Range": f"bytes */{size}"}
        )
    return start, end


def file_response(store: Store, stored: StoredFile, *, range_header: str | None, if_none_match: str | None) -> Response:
    """The stored file, whole (200), partial (206) or not modified (304)."""
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
    if span is None:
        headers["Content-Length"] = str(stored.size)
        return StreamingResponse(
            store.iter_file(stored.file_id), status_code=200, media_type=stored.content_type, headers=headers
        )
    start, end = span
    headers["Content-Length"] = str(end - start)
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{stored.size}"
    return StreamingResponse(
        store.iter_file(stored.file_id, start, end), status_code=206, media_type=stored.content_type, headers=headers
    )
