"""The frame of the exported splat files: gravity-aligned (−y up), ground at y = 0, in the SfM unit.

The SfM stage's normalised world is already gravity-aligned: its −y axis is the capture's up direction
(estimated from the cameras, ``sfm_worker/normalize.py``), its origin is the point the cameras look at
and its unit makes the camera centres lie within a radius of 1. The exports keep that orientation and
unit and only move the origin down to the ground, so a viewer that puts the file's floor at y = 0 shows
the scene standing on it. The ground is a robust low quantile of the SfM points along up (the points'
lowest dense layer), or, with too few points, the lowest camera.

``export_from_colmap`` (the similarity from COLMAP's frame to the files) is recorded in ``report.json``
and as comments in ``scene.ply``'s header, so a user can map the files back onto the COLMAP model.
Scale: one exported unit is ``1 / export_from_colmap.scale`` COLMAP units; COLMAP's unit is arbitrary
(no metric scale is known from a video alone), so ``metres_per_unit`` is null.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shared.manifest import SceneManifest, Similarity

#: Quantile of the points' height (y grows downwards) taken as the ground: their lowest dense layer.
GROUND_QUANTILE = 0.97
#: Fewer SfM points than this and the ground is the lowest camera.
MIN_GROUND_POINTS = 20


class ExportFrame(BaseModel):
    """Where the exported files sit relative to the normalised world and to COLMAP's frame."""

    model_config = ConfigDict(frozen=True)

    up: list[float] = Field(default=[0.0, -1.0, 0.0], description="the up direction in the files (−y)")
    ground_y: float = Field(description="world y of the ground; the files are shifted so that it is y = 0")
    ground_from: str = Field(description="'points' (a low quantile of the SfM points) or 'cameras' (the lowest one)")
    export_from_world: Similarity = Field(description="x_file = scale · R · x_world + t (a translation along y)")
    export_from_colmap: Similarity = Field(description="x_file = scale · R · x_colmap + t")
    colmap_units_per_unit: float = Field(description="length of one file unit in COLMAP's (arbitrary) unit")
    metres_per_unit: float | None = Field(default=None, description="null: a video alone gives no metric scale")

    def apply_points(self, xyz: np.ndarray) -> np.ndarray:
        """World points ``[N, 3]`` in the files' frame (a shift along y; rotations and scales are unchanged)."""
        out = np.array(xyz, dtype=np.float64, copy=True)
        out[:, 1] -= self.ground_y
        return out

    def world_points(self, xyz: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`apply_points`: points ``[N, 3]`` of the files' frame in the world."""
        out = np.array(xyz, dtype=np.float64, copy=True)
        out[:, 1] += self.ground_y
        return out

    def header_comments(self) -> list[str]:
        """One-line ``key value`` texts for a PLY header's ``comment`` lines."""
        c = self.export_from_colmap
        rotation = " ".join(f"{v:.9g}" for row in c.rotation for v in row)
        translation = " ".join(f"{v:.9g}" for v in c.translation)
        return [
            "vid2scene frame: OpenCV axes (x right, y down, z forward), -y up, ground at y=0",
            f"vid2scene export_from_colmap scale {c.scale:.9g}",
            f"vid2scene export_from_colmap rotation {rotation}",
            f"vid2scene export_from_colmap translation {translation}",
            f"vid2scene colmap_units_per_unit {self.colmap_units_per_unit:.9g}",
        ]


def estimate_ground_y(points_xyz: np.ndarray, manifest: SceneManifest) -> tuple[float, str]:
    """The world y of the ground and what it came from (``'points'`` or ``'cameras'``).

    Args:
        points_xyz: ``[P, 3]`` SfM points in the normalised world (−y up, so the ground has the largest y).
        manifest: the scene (its cameras are the fallback).
    """
    xyz = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    if len(xyz) >= MIN_GROUND_POINTS:
        return float(np.quantile(xyz[:, 1], GROUND_QUANTILE)), "points"
    centers = np.stack([f.camera_center() for f in manifest.frames])
    return float(centers[:, 1].max()), "cameras"


def export_frame(manifest: SceneManifest, points_xyz: np.ndarray) -> ExportFrame:
    """The exported files' frame for a scene (see the module docstring).

    Args:
        manifest: the scene (its ``world_from_colmap``).
        points_xyz: ``[P, 3]`` SfM points in the normalised world.
    """
    ground_y, source = estimate_ground_y(points_xyz, manifest)
    w = manifest.world_from_colmap
    translation = np.asarray(w.translation, dtype=np.float64) - np.array([0.0, ground_y, 0.0])
    return ExportFrame(
        ground_y=ground_y,
        ground_from=source,
        export_from_world=Similarity(scale=1.0, rotation=np.eye(3).tolist(), translation=[0.0, -ground_y, 0.0]),
        export_from_colmap=Similarity(scale=w.scale, rotation=w.rotation, translation=translation.tolist()),
        colmap_units_per_unit=1.0 / w.scale,
    )
