"""The fixed set of file names a job can hold (part of the API): who writes each, and its media type.

A name from a URL is only ever looked up in these tables; nothing a client sends reaches a
filesystem path or a GridFS query unchecked.
"""

from __future__ import annotations

from typing import Final

#: Artifact name -> (stage that writes it, media type).
STAGE_ARTIFACTS: Final[dict[str, tuple[str, str]]] = {
    "sfm.tar": ("sfm", "application/x-tar"),
    "report-sfm.json": ("sfm", "application/json"),
    "scene.ply": ("gs", "application/octet-stream"),
    "scene.splat": ("gs", "application/octet-stream"),
    "scene.spz": ("gs", "application/octet-stream"),
    "scene.compressed.ply": ("gs", "application/octet-stream"),
    "scene.html": ("gs", "text/html"),  # never in INLINE_TYPES: always an attachment, never rendered on our origin
    "flythrough-gs.mp4": ("gs", "video/mp4"),
    "report-gs.json": ("gs", "application/json"),
    "tensorf.pt": ("nerf", "application/octet-stream"),
    "flythrough-nerf.mp4": ("nerf", "video/mp4"),
    "report-nerf.json": ("nerf", "application/json"),
}

#: Detected container -> media type of the stored ``input.<ext>``.
INPUT_TYPES: Final[dict[str, str]] = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
}

INPUT_NAMES: Final[frozenset[str]] = frozenset(f"input.{ext}" for ext in INPUT_TYPES)

#: Every name ``GET /v1/jobs/{id}/artifacts/{name}`` accepts.
ALL_NAMES: Final[frozenset[str]] = frozenset(STAGE_ARTIFACTS) | INPUT_NAMES

#: Media types shown inline by a browser; everything else downloads as an attachment.
INLINE_TYPES: Final[frozenset[str]] = frozenset({"video/mp4", "application/json"})


def is_stage_artifact(stage: str, name: str) -> bool:
    """Whether ``stage`` is the one stage allowed to upload ``name``."""
    entry = STAGE_ARTIFACTS.get(name)
    return entry is not None and entry[0] == stage


def content_type(name: str) -> str:
    """The media type of a known name (``application/octet-stream`` for anything else)."""
    if name in STAGE_ARTIFACTS:
        return STAGE_ARTIFACTS[name][1]
    if name in INPUT_NAMES:
        return INPUT_TYPES[name.removeprefix("input.")]
    return "application/octet-stream"
