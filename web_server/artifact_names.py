"""The names ``GET /v1/jobs/{id}/artifacts/{name}`` accepts, and how each is served.

The stages' artifacts are the table in :mod:`shared.artifacts` (the workers share it); the server
adds only the uploaded video, ``input.<ext>``. A name from a URL is only ever looked up in these
tables; nothing a client sends reaches a filesystem path or a GridFS query unchecked.
"""

from __future__ import annotations

from typing import Final

from shared.artifacts import ARTIFACTS, BINARY, JSON, MP4, is_stage_artifact

__all__ = ["ALL_NAMES", "INLINE_TYPES", "INPUT_NAMES", "INPUT_TYPES", "content_type", "is_stage_artifact"]

#: Detected container -> media type of the stored ``input.<ext>``.
INPUT_TYPES: Final[dict[str, str]] = {
    "mp4": MP4,
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
}

INPUT_NAMES: Final[frozenset[str]] = frozenset(f"input.{ext}" for ext in INPUT_TYPES)

#: Every name ``GET /v1/jobs/{id}/artifacts/{name}`` accepts.
ALL_NAMES: Final[frozenset[str]] = frozenset(ARTIFACTS) | INPUT_NAMES

#: Media types shown inline by a browser; everything else downloads as an attachment.
INLINE_TYPES: Final[frozenset[str]] = frozenset({MP4, JSON})


def content_type(name: str) -> str:
    """The media type of a known name (``application/octet-stream`` for anything else)."""
    if name in ARTIFACTS:
        return ARTIFACTS[name].media_type
    if name in INPUT_NAMES:
        return INPUT_TYPES[name.removeprefix("input.")]
    return BINARY
