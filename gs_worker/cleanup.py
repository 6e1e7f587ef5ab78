"""Clean-up before export: remove floaters and crop the trained splats to the scene.

Applied to what every export file holds and to what the flythrough renders. Steps, in order, each on
what the previous ones kept (all vectorised numpy; kNN with scipy's ``cKDTree``):

1. ``low_opacity``: ``sigmoid(opacity) < cleanup_min_opacity`` — nearly invisible splats.
2. ``cropped``: outside the scene region. ``crop="auto"``: seen by no camera of the capture (the centre
   projects outside every frame, widened by :data:`FRUSTUM_MARGIN`, or lies behind every camera) — for
   an object capture that is the region the cameras look at — or outside the SfM points' robust extent
   (the :data:`EXTENT_QUANTILE` … 1 − quantile box of the points, widened by :data:`EXTENT_MARGIN` of its
   size on each side) — for a room or an outdoor capture, the space the points fill. A
   :class:`~shared.options.gs.CropBox` keeps what lies inside the box (in the exported frame);
   ``"none"`` keeps everything.
3. ``overlay``: splats that project into the input video's screen-fixed overlay (a UI badge, a logo;
   :mod:`gs_worker.overlay`) in at least :data:`OVERLAY_SHARE` of the (≥ 3) frames that see them — the
   overlay rebuilt in 3D.
4. ``near_camera``: closer than ``cleanup_near_camera × scene_radius`` to a camera centre — the blobs a
   trainer puts in front of the lens to explain one view.
5. ``huge``: largest σ above ``cleanup_max_angular_size ×`` the distance to the nearest camera — a blob
   that covers a large part of any view.
6. ``isolated``: statistical outlier removal on position, size and opacity: a splat's spacing (mean
   distance to its ``cleanup_knn`` nearest splats) over the median spacing of those neighbours — about 1
   on a surface at any density, large for a speck in empty air — in log space; splats more than
   ``cleanup_isolation_sigma`` robust standard deviations (1.4826 · MAD) above the median go when they
   are specks: too small to reach their neighbours (3σ below their spacing) and not solid (opacity
   below 0.5) — a large splat bridging a sparse region is surface, an opaque point is detail.

Steps 1 and 3–6 run when ``cleanup`` is on; step 2 follows ``crop``.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gs_worker.scene_frame import ExportFrame
from shared.camera_path import camera_centers
from shared.manifest import SceneManifest
from shared.options.gs import CropBox, SplatOptions

#: How far beyond the image border a splat centre still counts as seen (fraction of width/height).
FRUSTUM_MARGIN = 0.15
#: Lower quantile of the points' robust extent (the upper one is 1 − this).
EXTENT_QUANTILE = 0.01
#: The robust extent is widened by this fraction of its size on every side.
EXTENT_MARGIN = 1.0
#: Splats at least this opaque are never called isolated.
SOLID_OPACITY = 0.5

#: A splat inside the overlay in at least this share of the frames that see it is part of the overlay.
OVERLAY_SHARE = 0.8

STEPS: tuple[str, ...] = ("low_opacity", "cropped", "overlay", "near_camera", "huge", "isolated")


class CleanupReport(BaseModel):
    """How many splats each clean-up step removed (``report.json``'s ``cleanup``)."""

    model_config = ConfigDict(frozen=True)

    input_count: int = Field(description="splats before clean-up")
    kept_count: int = Field(description="splats after clean-up")
    removed: dict[str, int] = Field(description="step → splats it removed (steps in order)")
    crop: str = Field(description="'auto', 'none' or 'box'")
    crop_box_world: list[list[float]] | None = Field(
        default=None, description="auto: the points' widened robust extent in world coordinates [[min], [max]]"
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def seen_by_any_camera(means: np.ndarray, manifest: SceneManifest, margin: float = FRUSTUM_MARGIN) -> np.ndarray:
    """Whether each centre ``[N, 3]`` lies in front of some camera and inside its (widened) frame; ``[N]`` bool."""
    cam = manifest.camera
    K = cam.K()
    seen = np.zeros(len(means), dtype=bool)
    lo_u, hi_u = -margin * cam.width, (1.0 + margin) * cam.width
    lo_v, hi_v = -margin * cam.height, (1.0 + margin) * cam.height
    for frame in manifest.frames:
        todo = np.flatnonzero(~seen)
        if len(todo) == 0:
            break
        m = frame.cam_from_world_matrix()
        p = means[todo] @ m[:3, :3].T + m[:3, 3]
        z = p[:, 2]
        front = z > 1e-6
        with np.errstate(divide="ignore", invalid="ignore"):
            u = K[0, 0] * p[:, 0] / z + K[0, 2]
            v = K[1, 1] * p[:, 1] / z + K[1, 2]
        inside = front & (u >= lo_u) & (u <= hi_u) & (v >= lo_v) & (v <= hi_v)
        seen[todo[inside]] = True
    return seen


def on_overlay(means: np.ndarray, manifest: SceneManifest, overlay: np.ndarray) -> np.ndarray:
    """Whether each centre ``[N, 3]`` falls in the overlay mask ``[H, W]`` in most of the (≥ 3) frames that see it."""
    height, width = overlay.shape
    K = manifest.camera.scaled(width, height).K()
    in_view = np.zeros(len(means), dtype=np.int64)
    on = np.zeros(len(means), dtype=np.int64)
    for frame in manifest.frames:
        m = frame.cam_from_world_matrix()
        p = means @ m[:3, :3].T + m[:3, 3]
        z = p[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.floor(K[0, 0] * p[:, 0] / z + K[0, 2])
            v = np.floor(K[1, 1] * p[:, 1] / z + K[1, 2])
        inside = (z > 1e-6) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        hit = np.zeros(len(means), dtype=bool)
        hit[inside] = overlay[v[inside].astype(np.int64), u[inside].astype(np.int64)]
        in_view += inside
        on += hit
    return (in_view >= 3) & (on >= OVERLAY_SHARE * in_view)


def robust_extent(points_xyz: np.ndarray) -> np.ndarray | None:
    """The SfM points' robust box widened by :data:`EXTENT_MARGIN`, ``[[min], [max]]``; None with < 10 points."""
    xyz = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    if len(xyz) < 10:
        return None
    lo = np.quantile(xyz, EXTENT_QUANTILE, axis=0)
    hi = np.quantile(xyz, 1.0 - EXTENT_QUANTILE, axis=0)
    pad = EXTENT_MARGIN * np.maximum(hi - lo, 1e-6)
    return np.stack([lo - pad, hi + pad])


def _inside(means: np.ndarray, box: np.ndarray) -> np.ndarray:
    return ((means >= box[0]) & (means <= box[1])).all(axis=1)


def _isolated(means: np.ndarray, sigma_max: np.ndarray, opacity: np.ndarray, k: int, n_sigma: float) -> np.ndarray:
    """Statistical outlier removal (see the module docstring); ``[N]`` bool, True for an outlier."""
    from scipy.spatial import cKDTree

    n = len(means)
    if n <= k + 1:
        return np.zeros(n, dtype=bool)
    dist, neighbours = cKDTree(means).query(means, k=k + 1)
    spacing = np.maximum(np.asarray(dist)[:, 1:].mean(axis=1), 1e-12)
    around = np.median(spacing[np.asarray(neighbours)[:, 1:]], axis=1)
    score = np.log(spacing / around)
    median = np.median(score)
    mad = 1.4826 * np.median(np.abs(score - median))
    outlier = score > median + n_sigma * max(mad, 1e-3)
    reaches_neighbours = 3.0 * sigma_max >= spacing  # a large splat bridging a sparse region is a surface
    return outlier & ~reaches_neighbours & (opacity < SOLID_OPACITY)


def cleanup_mask(
    splats: dict[str, np.ndarray],
    manifest: SceneManifest,
    points_xyz: np.ndarray,
    frame: ExportFrame,
    options: SplatOptions,
    *,
    overlay: np.ndarray | None = None,
    floaters: bool | None = None,
) -> tuple[np.ndarray, CleanupReport]:
    """Which splats to keep, and how many each step removed.

    Args:
        splats: ``means`` [N, 3], ``scales`` [N, 3] (log), ``opacities`` [N] (logit) in the normalised world
            (other keys are ignored).
        manifest: the scene (cameras, radius).
        points_xyz: ``[P, 3]`` SfM points in the normalised world.
        frame: the exported frame (a crop box is given in it).
        options: ``crop`` and the ``cleanup_*`` thresholds.
        overlay: the input video's screen-fixed overlay ``[H, W]`` (:func:`gs_worker.overlay.static_overlay_mask`).
        floaters: run the floater steps (1, 3–6); None follows ``options.cleanup``.

    Returns:
        ``(keep [N] bool, report)``.
    """
    means = np.asarray(splats["means"], dtype=np.float64).reshape(-1, 3)
    n = len(means)
    log_scales = np.asarray(splats["scales"], dtype=np.float64).reshape(n, 3)
    opacity = _sigmoid(np.asarray(splats["opacities"], dtype=np.float64).reshape(n))
    floaters = options.cleanup if floaters is None else floaters
    keep = np.asarray(np.isfinite(means).all(axis=1))
    removed = dict.fromkeys(STEPS, 0)

    def drop(step: str, mask: np.ndarray) -> None:
        hit = keep & mask
        removed[step] = int(hit.sum())
        keep[hit] = False

    if floaters:
        drop("low_opacity", opacity < options.cleanup_min_opacity)

    box_world: np.ndarray | None = None
    crop_kind = options.crop if isinstance(options.crop, str) else "box"
    if isinstance(options.crop, CropBox):
        box = np.array([options.crop.min, options.crop.max], dtype=np.float64)
        drop("cropped", ~_inside(frame.apply_points(means), box))
    elif options.crop == "auto":
        box_world = robust_extent(points_xyz)
        outside = np.zeros(n, dtype=bool)
        if box_world is not None:
            outside |= ~_inside(means, box_world)
        todo = np.flatnonzero(keep & ~outside)
        unseen = np.ones(len(todo), dtype=bool)
        unseen[seen_by_any_camera(means[todo], manifest)] = False
        outside[todo[unseen]] = True
        drop("cropped", outside)

    if floaters:
        if overlay is not None:
            idx = np.flatnonzero(keep)
            rebuilt = np.zeros(n, dtype=bool)
            rebuilt[idx[on_overlay(means[idx], manifest, overlay)]] = True
            drop("overlay", rebuilt)
        centers = camera_centers(np.stack([f.cam_from_world_matrix() for f in manifest.frames]))
        from scipy.spatial import cKDTree

        cam_dist = np.full(n, np.inf)
        finite = np.isfinite(means).all(axis=1)
        cam_dist[finite] = np.asarray(cKDTree(centers).query(means[finite], k=1)[0])
        drop("near_camera", cam_dist < options.cleanup_near_camera * manifest.scene_radius)
        sigma_max = np.exp(log_scales.max(axis=1))
        drop("huge", sigma_max > options.cleanup_max_angular_size * cam_dist)
        idx = np.flatnonzero(keep)
        outlier = _isolated(
            means[idx], sigma_max[idx], opacity[idx], options.cleanup_knn, options.cleanup_isolation_sigma
        )
        isolated = np.zeros(n, dtype=bool)
        isolated[idx[outlier]] = True
        drop("isolated", isolated)

    report = CleanupReport(
        input_count=n,
        kept_count=int(keep.sum()),
        removed=removed,
        crop=crop_kind,
        crop_box_world=None if box_world is None else box_world.tolist(),
    )
    return keep, report


def subset(splats: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """The splats ``keep`` selects (every array indexed along its first axis)."""
    return {name: value[keep] for name, value in splats.items()}
