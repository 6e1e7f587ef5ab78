"""The frame of the exported splat files: gravity-aligned (−y up), ground at y = 0, in the SfM unit.

The SfM stage's normalised world is gravity-aligned from the cameras alone (``sfm_worker/normalize.py``:
the plane of an orbit or the cameras' mean up), which can be off by a few degrees on an orbit and by the
capture's downward pitch on an arc (36° on the garden clip). The exports level it
on the ground: a RANSAC plane through the lower half of the SfM points whose normal lies within
:data:`MAX_LEVEL_DEG` of the world's up becomes the floor — the files are turned (about the world origin,
the point the cameras look at) so that its normal is exactly −y, and moved so that it is y = 0. Without
such a plane (too few points, no level surface) the world's up is kept and the ground is a robust low
quantile of the points along up (their lowest dense layer), or, with too few points, the lowest camera.
The unit stays the SfM unit (camera centres within about 1 of the origin).

Turning splats turns their positions, their quaternions and their SH coefficients (each band rotated by
the matrix that maps the basis evaluated at ``Rᵀ d`` onto the basis at ``d``, fitted on sample
directions), so a file renders as the world did.

``export_from_colmap`` (the similarity from COLMAP's frame to the files) is recorded in ``report.json``
and as comments in the PLY headers, so a user can map the files back onto the COLMAP model. Scale: one
exported unit is ``colmap_units_per_unit`` COLMAP units; COLMAP's unit is arbitrary (a video alone gives
no metric scale), so ``metres_per_unit`` is null.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gs_worker.rasterize_reference import SH_BASIS
from shared.manifest import SceneManifest, Similarity

#: Quantile of the points' height (y grows downwards) taken as the ground without a plane.
GROUND_QUANTILE = 0.97
#: Fewer SfM points than this and the ground is the lowest camera.
MIN_GROUND_POINTS = 20
#: A ground plane may tilt the world's up by at most this much. The world's up comes from the cameras;
#: without a full orbit it is their mean up axis, which leans back by the capture's downward pitch
#: (36° on the garden clip), so the floor is trusted this far when the cameras stand above it.
MAX_LEVEL_DEG = 45.0
#: At least this share of the camera centres must lie above a ground plane.
MIN_CAMERAS_ABOVE = 0.95
#: RANSAC: candidate planes, inlier distance (× scene radius), least share of the lower points on the plane.
RANSAC_PLANES = 256
RANSAC_INLIER = 0.01
RANSAC_MIN_SHARE = 0.2

UP = np.array([0.0, -1.0, 0.0])


def sh_basis(directions: np.ndarray, n_coeffs: int) -> np.ndarray:
    """The degree ≥ 1 basis ``[S, n_coeffs]`` at unit directions ``[S, 3]``."""
    x, y, z = directions.T
    return np.stack([f(x, y, z) for f in SH_BASIS[1 : 1 + n_coeffs]], axis=1)


def sh_rotation(rotation: np.ndarray, n_coeffs: int) -> np.ndarray:
    """``X`` ``[K, K]`` with ``c' = X c``: the coefficients of a colour turned by ``rotation`` (``c'(d) = c(Rᵀ d)``)."""
    if n_coeffs == 0:
        return np.zeros((0, 0))
    d = np.random.default_rng(0).normal(size=(256, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    x = np.zeros((n_coeffs, n_coeffs))
    start = 0
    for size in (3, 5, 7):  # bands rotate among themselves
        if start >= n_coeffs:
            break
        band = slice(start, start + size)
        a, b = sh_basis(d, start + size)[:, band], sh_basis(d @ rotation, start + size)[:, band]
        x[band, band] = np.linalg.lstsq(a, b, rcond=None)[0]  # b = a Mᵀ with Y(Rᵀd) = M Y(d); c' = Mᵀ c
        start += size
    return x


def _quat_of(rotation: np.ndarray) -> np.ndarray:
    """The unit quaternion (w, x, y, z) of a rotation matrix."""
    w = np.sqrt(max(0.0, 1.0 + np.trace(rotation))) / 2.0
    if w > 1e-6:
        v = np.array(
            [rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]]
        )
        return np.array([w, *(v / (4.0 * w))])
    axis = np.linalg.eigh(rotation + rotation.T)[1][:, -1]  # a half turn: the axis is the +1 eigenvector
    return np.array([0.0, *axis])


def _quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products of (w, x, y, z) quaternions, broadcast over ``[..., 4]``."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b`` (Rodrigues)."""
    v, c = np.cross(a, b), float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


class ExportFrame(BaseModel):
    """Where the exported files sit relative to the normalised world and to COLMAP's frame."""

    model_config = ConfigDict(frozen=True)

    up: list[float] = Field(default=[0.0, -1.0, 0.0], description="the up direction in the files (−y)")
    ground_from: Literal["plane", "points", "cameras"] = Field(
        description="plane: a RANSAC floor levelled the files; points: a low quantile; cameras: the lowest camera"
    )
    level_deg: float = Field(description="how far the ground plane turned the world's up (degrees)")
    ground_share: float = Field(description="share of the lower SfM points on the ground plane (0 without one)")
    export_from_world: Similarity = Field(description="x_file = R · x_world + t")
    export_from_colmap: Similarity = Field(description="x_file = scale · R · x_colmap + t")
    colmap_units_per_unit: float = Field(description="length of one file unit in COLMAP's (arbitrary) unit")
    metres_per_unit: float | None = Field(default=None, description="null: a video alone gives no metric scale")

    def _rt(self) -> tuple[np.ndarray, np.ndarray]:
        w = self.export_from_world
        return np.asarray(w.rotation, dtype=np.float64), np.asarray(w.translation, dtype=np.float64)

    def apply_points(self, xyz: np.ndarray) -> np.ndarray:
        """World points ``[N, 3]`` in the files' frame."""
        rotation, translation = self._rt()
        return np.asarray(xyz, dtype=np.float64) @ rotation.T + translation

    def world_points(self, xyz: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`apply_points`: points ``[N, 3]`` of the files' frame in the world."""
        rotation, translation = self._rt()
        return (np.asarray(xyz, dtype=np.float64) - translation) @ rotation

    def camera_rotation(self, cam_from_world: np.ndarray) -> np.ndarray:
        """The rotation ``[3, 3]`` of a camera (``cam_from_world`` ``[4, 4]``) relative to the files' frame."""
        return cam_from_world[:3, :3] @ self._rt()[0].T

    def apply_splats(self, splats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Splats (trainer layout) in the files' frame: positions, quaternions and SH turned, the rest as is."""
        rotation, _ = self._rt()
        out = dict(splats)
        out["means"] = self.apply_points(splats["means"])
        if not np.allclose(rotation, np.eye(3)):
            quats = np.asarray(splats["quats"], dtype=np.float64)
            out["quats"] = _quat_multiply(_quat_of(rotation), quats)
            sh = np.asarray(splats["shN"], dtype=np.float64)
            if sh.shape[1]:
                out["shN"] = np.einsum("jk,nkc->njc", sh_rotation(rotation, sh.shape[1]), sh)
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


def ground_plane(
    points_xyz: np.ndarray, camera_centers: np.ndarray, scene_radius: float, seed: int = 0
) -> tuple[np.ndarray, float, float] | None:
    """A floor under the SfM points: ``(unit normal pointing up, offset d with n·x = d, inlier share)``.

    RANSAC over the lower half of the points (along the world's −y up), keeping planes within
    :data:`MAX_LEVEL_DEG` of level, refined by least squares on the inliers; None without a plane holding
    :data:`RANSAC_MIN_SHARE` of them, or when fewer than :data:`MIN_CAMERAS_ABOVE` of the cameras
    ``[F, 3]`` stand above it (a person films from above the floor).
    """
    xyz = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    if len(xyz) < 3 * MIN_GROUND_POINTS:
        return None
    lower = xyz[xyz[:, 1] >= np.median(xyz[:, 1])]
    rng = np.random.default_rng(seed)
    if len(lower) > 20_000:
        lower = lower[rng.choice(len(lower), 20_000, replace=False)]
    triples = lower[rng.integers(0, len(lower), size=(RANSAC_PLANES, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    length = np.linalg.norm(normals, axis=1)
    ok = length > 1e-12
    normals = normals[ok] / length[ok, None]
    normals *= np.where(normals @ UP < 0, -1.0, 1.0)[:, None]
    level = normals @ UP > np.cos(np.radians(MAX_LEVEL_DEG))
    normals, anchors = normals[level], triples[ok][level, 0]
    if len(normals) == 0:
        return None
    threshold = RANSAC_INLIER * scene_radius
    offsets = np.einsum("pk,pk->p", normals, anchors)
    inliers = np.abs(lower @ normals.T - offsets) < threshold  # [M, planes]
    best = int(inliers.sum(axis=0).argmax())
    on = lower[inliers[:, best]]
    if len(on) < max(MIN_GROUND_POINTS, RANSAC_MIN_SHARE * len(lower)):
        return None
    centre = on.mean(axis=0)
    normal = np.linalg.svd(on - centre, full_matrices=False)[2][2]
    normal *= 1.0 if normal @ UP >= 0 else -1.0
    offset = float(normal @ centre)
    above = np.asarray(camera_centers, dtype=np.float64) @ normal - offset > 0
    if normal @ UP < np.cos(np.radians(MAX_LEVEL_DEG)) or above.mean() < MIN_CAMERAS_ABOVE:
        return None
    return normal, offset, len(on) / len(lower)


def export_frame(manifest: SceneManifest, points_xyz: np.ndarray) -> ExportFrame:
    """The exported files' frame for a scene (see the module docstring).

    Args:
        manifest: the scene (its ``world_from_colmap``, cameras and radius).
        points_xyz: ``[P, 3]`` SfM points in the normalised world.
    """
    xyz = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    centers = np.stack([f.camera_center() for f in manifest.frames])
    plane = ground_plane(xyz, centers, manifest.scene_radius)
    rotation = np.eye(3)
    level_deg, share = 0.0, 0.0
    source: Literal["plane", "points", "cameras"]
    if plane is not None:
        normal, offset, share = plane
        rotation = _rotation_between(normal, UP)
        level_deg = float(np.degrees(np.arccos(np.clip(normal @ UP, -1.0, 1.0))))
        ground_y, source = -offset, "plane"  # the turned floor: (0, -1, 0) · x = offset
    elif len(xyz) >= MIN_GROUND_POINTS:
        ground_y, source = float(np.quantile(xyz[:, 1], GROUND_QUANTILE)), "points"
    else:
        ground_y = float(centers[:, 1].max())
        source = "cameras"
    translation = np.array([0.0, -ground_y, 0.0])
    w = manifest.world_from_colmap
    w_rotation = np.asarray(w.rotation, dtype=np.float64)
    return ExportFrame(
        ground_from=source,
        level_deg=level_deg,
        ground_share=share,
        export_from_world=Similarity(scale=1.0, rotation=rotation.tolist(), translation=translation.tolist()),
        export_from_colmap=Similarity(
            scale=w.scale,
            rotation=(rotation @ w_rotation).tolist(),
            translation=(rotation @ np.asarray(w.translation, dtype=np.float64) + translation).tolist(),
        ),
        colmap_units_per_unit=1.0 / w.scale,
    )
