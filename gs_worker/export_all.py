"""After training: clean the splats (with a held-out PSNR guard) and write every export format.

:func:`clean_for_export` runs :mod:`gs_worker.cleanup` and scores the result on the held-out frames; when
the floater steps cost more than ``cleanup_max_psnr_drop`` dB they are undone (the crop stays) and the
report says so. :func:`write_exports` writes, in the exported frame (:mod:`gs_worker.scene_frame`):

| file | writer |
|---|---|
| ``scene.ply`` | :func:`gs_worker.export.write_ply` (INRIA layout; the frame in header comments) |
| ``scene.splat`` | :func:`gs_worker.export.write_splat` (antimatter15, no SH) |
| ``scene.spz`` | :func:`gs_worker.export_spz.write_spz` (Niantic SPZ v3, RUB axes) |
| ``scene.compressed.ply`` | :func:`gs_worker.export_compressed_ply.write_compressed_ply` (PlayCanvas) |
| ``scene.html`` | :func:`gs_worker.scene_page.write_scene_page` (the SPZ inlined, with a viewer) |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gs_worker.cleanup import CleanupReport, cleanup_mask, subset
from gs_worker.export import write_ply, write_splat
from gs_worker.export_compressed_ply import write_compressed_ply
from gs_worker.export_spz import write_spz
from gs_worker.scene_frame import ExportFrame
from gs_worker.scene_page import write_scene_page
from shared.artifacts import COMPRESSED_PLY_FILE, HTML_FILE, PLY_FILE, SPLAT_FILE, SPZ_FILE
from shared.heldout import HeldoutMetrics
from shared.manifest import SceneManifest
from shared.options.gs import SplatOptions

logger = logging.getLogger(__name__)

#: The export files, by their names in :mod:`shared.artifacts`.
EXPORT_FILES: tuple[str, ...] = (PLY_FILE, SPLAT_FILE, SPZ_FILE, COMPRESSED_PLY_FILE, HTML_FILE)

#: Scores a set of splats (trainer layout, numpy) on the held-out frames.
EvaluateFn = Callable[[dict[str, np.ndarray]], HeldoutMetrics]


class ExportedFile(BaseModel):
    """One written file (``report.json``'s ``files``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    bytes: int = Field(description="file size")
    splats: int = Field(description="splats it holds")


@dataclass(frozen=True)
class CleanedSplats:
    """What :func:`clean_for_export` kept and how it scored."""

    splats: dict[str, np.ndarray]
    report: CleanupReport
    metrics: HeldoutMetrics
    floaters_undone: bool


def clean_for_export(
    splats: dict[str, np.ndarray],
    manifest: SceneManifest,
    points_xyz: np.ndarray,
    frame: ExportFrame,
    options: SplatOptions,
    before: HeldoutMetrics,
    evaluate: EvaluateFn,
    overlay: np.ndarray | None = None,
) -> CleanedSplats:
    """Clean up the trained splats, undoing the floater steps if they cost too much held-out PSNR.

    Args:
        splats: the trained splats (trainer layout, numpy, normalised world).
        manifest: the scene.
        points_xyz: ``[P, 3]`` SfM points.
        frame: the exported frame (a crop box is given in it).
        options: ``crop``, ``cleanup`` and the thresholds.
        before: the held-out scores of ``splats``.
        evaluate: scores a set of splats on the held-out frames.
        overlay: the input video's screen-fixed overlay mask, if any (:mod:`gs_worker.overlay`).

    Returns:
        The kept splats, the per-step counts, their held-out scores, and whether the floater steps were undone.
    """
    keep, report = cleanup_mask(splats, manifest, points_xyz, frame, options, overlay=overlay)
    if report.kept_count == report.input_count:
        return CleanedSplats(splats, report, before, floaters_undone=False)
    cleaned = subset(splats, keep)
    after = evaluate(cleaned)
    drop = before["psnr"] - after["psnr"]
    if not options.cleanup or drop <= options.cleanup_max_psnr_drop:
        return CleanedSplats(cleaned, report, after, floaters_undone=False)
    logger.warning("clean-up cost %.2f dB of held-out PSNR; keeping the floaters (crop only)", drop)
    keep, report = cleanup_mask(splats, manifest, points_xyz, frame, options, floaters=False)
    cleaned = subset(splats, keep)
    return CleanedSplats(cleaned, report, evaluate(cleaned), floaters_undone=True)


def write_exports(
    out_dir: Path, splats: dict[str, np.ndarray], manifest: SceneManifest, frame: ExportFrame
) -> list[ExportedFile]:
    """Write every format of :data:`EXPORT_FILES` into ``out_dir``, in the exported frame.

    Args:
        out_dir: the folder.
        splats: the cleaned splats (trainer layout, numpy, normalised world).
        manifest: the scene (the viewer page's camera path).
        frame: the exported frame.

    Returns:
        Each file's name, size and splat count, in :data:`EXPORT_FILES` order.
    """
    moved = frame.apply_splats(splats)
    comments = frame.header_comments()
    counts = {
        PLY_FILE: write_ply(out_dir / PLY_FILE, moved, comments),
        SPLAT_FILE: write_splat(out_dir / SPLAT_FILE, moved),
        SPZ_FILE: write_spz(out_dir / SPZ_FILE, moved),
        COMPRESSED_PLY_FILE: write_compressed_ply(out_dir / COMPRESSED_PLY_FILE, moved, comments),
    }
    counts[HTML_FILE] = write_scene_page(out_dir / HTML_FILE, out_dir / SPZ_FILE, manifest, frame)
    return [
        ExportedFile(name=name, bytes=(out_dir / name).stat().st_size, splats=counts[name]) for name in EXPORT_FILES
    ]
