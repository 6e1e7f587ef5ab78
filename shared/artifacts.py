"""The one table of a job's artifacts (part of the API): who writes each, its media type, its file.

Every artifact name is defined here and nowhere else. The server accepts from a stage's worker only
that stage's names and serves only these names (plus the uploaded video, ``input.<ext>``, which is
the server's own: ``web_server/artifact_names.py``); each worker uploads exactly its stage's entries,
taken from the files its stage function wrote (``file``), and the stage functions name their output
files with the constants below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.messages import StageName

#: The file in every stage's output folder that holds its metrics (uploaded as ``report-<stage>.json``).
REPORT_FILE: Final = "report.json"

#: The worker-API input name of the job's uploaded video: the sfm stage's input.
VIDEO_INPUT: Final = "input"

#: The sfm stage's scene folder, packed by the sfm worker; the training stages' input.
SCENE_ARCHIVE: Final = "sfm.tar"

# The gs stage's exports, flythrough and report, by their file names in its output folder.
PLY_FILE: Final = "scene.ply"
SPLAT_FILE: Final = "scene.splat"
SPZ_FILE: Final = "scene.spz"
COMPRESSED_PLY_FILE: Final = "scene.compressed.ply"
HTML_FILE: Final = "scene.html"
GS_FLYTHROUGH_FILE: Final = "flythrough-gs.mp4"

# The nerf stage's model and flythrough.
NERF_MODEL_FILE: Final = "tensorf.pt"
NERF_FLYTHROUGH_FILE: Final = "flythrough-nerf.mp4"

TAR: Final = "application/x-tar"
JSON: Final = "application/json"
BINARY: Final = "application/octet-stream"
HTML: Final = "text/html"
MP4: Final = "video/mp4"


@dataclass(frozen=True)
class Artifact:
    """One artifact a job can hold.

    Attributes:
        name: the name in the API (``GET /v1/jobs/{id}/artifacts/{name}``, the worker's upload).
        stage: the one stage whose worker may upload it.
        media_type: the ``Content-Type`` it is stored and served with.
        file: its file name in the stage's output folder; None for ``sfm.tar``, which is not a file
            there but the whole folder, packed by the sfm worker.
    """

    name: str
    stage: StageName
    media_type: str
    file: str | None


#: Artifact name → :class:`Artifact`; within a stage, the report comes last (it marks completion).
ARTIFACTS: Final[dict[str, Artifact]] = {
    artifact.name: artifact
    for artifact in (
        Artifact(SCENE_ARCHIVE, "sfm", TAR, None),
        Artifact("report-sfm.json", "sfm", JSON, REPORT_FILE),
        Artifact(PLY_FILE, "gs", BINARY, PLY_FILE),
        Artifact(SPLAT_FILE, "gs", BINARY, SPLAT_FILE),
        Artifact(SPZ_FILE, "gs", BINARY, SPZ_FILE),
        Artifact(COMPRESSED_PLY_FILE, "gs", BINARY, COMPRESSED_PLY_FILE),
        # Never shown inline by the server: always an attachment, never rendered on the API's origin.
        Artifact(HTML_FILE, "gs", HTML, HTML_FILE),
        Artifact(GS_FLYTHROUGH_FILE, "gs", MP4, GS_FLYTHROUGH_FILE),
        Artifact("report-gs.json", "gs", JSON, REPORT_FILE),
        Artifact(NERF_MODEL_FILE, "nerf", BINARY, NERF_MODEL_FILE),
        Artifact(NERF_FLYTHROUGH_FILE, "nerf", MP4, NERF_FLYTHROUGH_FILE),
        Artifact("report-nerf.json", "nerf", JSON, REPORT_FILE),
    )
}


def stage_artifacts(stage: StageName) -> tuple[Artifact, ...]:
    """The artifacts ``stage`` uploads, in table order (its report last)."""
    return tuple(artifact for artifact in ARTIFACTS.values() if artifact.stage == stage)


def output_files(stage: StageName) -> dict[str, str]:
    """Artifact name → file name in ``stage``'s output folder, for each of its artifacts that is a file there."""
    return {a.name: a.file for a in stage_artifacts(stage) if a.file is not None}


def is_stage_artifact(stage: str, name: str) -> bool:
    """Whether ``stage`` is the one stage allowed to upload ``name``."""
    artifact = ARTIFACTS.get(name)
    return artifact is not None and artifact.stage == stage
