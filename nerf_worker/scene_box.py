"""The scene box TensoRF's grid covers, from the sparse points and the cameras.

The box is the ``[q, 1-q]`` quantile range of the SfM points per axis (robust to stray points),
grown by a margin, widened to hold the cameras themselves (the ground and plants just beside a
camera fill the edges of its frames), and limited to ``max_camera_extent`` × the cameras' own spread
around the cameras' centre so that a handful of distant background points cannot stretch the grid
over empty space. (With a limit of 1.5 the garden clip's box held 55 % of the points the frames
observe and its frames showed flat grey wedges at their edges, where rays missed the box; 3.0 holds
88 %.) What lies outside the box — the far background of a 360° outdoor orbit, the sky — is not
modelled by the grid: each ray that leaves the box composites a learned, direction-dependent
background colour (a degree-2 spherical-harmonic environment term, :meth:`TensorVM.background`).
This keeps the whole grid resolution on the captured subject, at the cost of a background that
carries no parallax.
"""

from __future__ import annotations

import numpy as np


def scene_box(
    points: np.ndarray,
    camera_centers: np.ndarray,
    *,
    quantile: float = 0.02,
    margin: float = 0.1,
    max_camera_extent: float = 3.0,
) -> np.ndarray:
    """An axis-aligned box around the captured subject.

    Args:
        points: sparse SfM points in the normalised world.  # [N, 3]
        camera_centers: camera centres.  # [C, 3]
        quantile: fraction of points ignored at each end of every axis.
        margin: growth of the quantile box, as a fraction of its size, on each side.
        max_camera_extent: the box never reaches further from the cameras' centre than this
            multiple of the cameras' largest distance from it.

    Returns:
        ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` as float32.  # [2, 3]

    Example:
        >>> pts = np.random.default_rng(0).uniform(-0.5, 0.5, (500, 3))
        >>> cams = np.array([[2.0, 0, 0], [-2.0, 0, 0], [0, 0, 2.0]])
        >>> bool((scene_box(pts, cams)[1] > 0.5).all())
        True
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    centers = np.asarray(camera_centers, dtype=np.float64).reshape(-1, 3)
    if len(points) < 4:
        lo, hi = centers.min(0), centers.max(0)
    else:
        lo, hi = np.quantile(points, quantile, axis=0), np.quantile(points, 1.0 - quantile, axis=0)
    size = np.maximum(hi - lo, 1e-3)
    lo, hi = lo - margin * size, hi + margin * size
    pad = margin * size
    lo, hi = np.minimum(lo, centers.min(0) - pad), np.maximum(hi, centers.max(0) + pad)
    mid = centers.mean(0)
    reach = max_camera_extent * max(float(np.linalg.norm(centers - mid, axis=1).max()), 1e-3)
    lo, hi = np.maximum(lo, mid - reach), np.minimum(hi, mid + reach)
    # a degenerate (flat) box after clipping gets a minimal thickness
    thin = hi - lo < 0.05 * reach
    lo, hi = np.where(thin, (lo + hi) / 2 - 0.025 * reach, lo), np.where(thin, (lo + hi) / 2 + 0.025 * reach, hi)
    return np.stack([lo, hi]).astype(np.float32)
