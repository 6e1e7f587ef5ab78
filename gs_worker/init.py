"""Initial Gaussians from the SfM points (never from random points).

As in gsplat's ``simple_trainer``: one Gaussian per sparse point, coloured by the point (the SH DC
term, higher bands zero), isotropic with a scale equal to the RMS distance to its 3 nearest
neighbours, an identity rotation and a low opacity.
"""

from __future__ import annotations

import numpy as np

#: The zeroth spherical-harmonics basis constant, ``1 / (2√π)``.
SH_C0 = 0.28209479177387814


def rgb_to_sh(rgb: np.ndarray) -> np.ndarray:
    """SH DC coefficients whose rendered colour (``SH_C0·c + 0.5``) is ``rgb`` in ``[0, 1]``."""
    return (rgb - 0.5) / SH_C0


def logit(p: np.ndarray | float) -> np.ndarray:
    """The inverse of the sigmoid."""
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def knn_distance(xyz: np.ndarray, k: int = 3) -> np.ndarray:
    """RMS distance of each point to its ``k`` nearest other points, ``[N]``.

    Coincident points get the smallest positive distance found (or 1e-4 if there is none), so no
    scale is zero.
    """
    from scipy.spatial import cKDTree

    k = min(k, len(xyz) - 1)
    dist, _ = cKDTree(xyz).query(xyz, k=k + 1)  # [N, k+1]; column 0 is the point itself
    rms = np.sqrt(np.mean(np.asarray(dist)[:, 1:] ** 2, axis=1))
    positive = rms[rms > 0]
    floor = float(positive.min()) if len(positive) else 1e-4
    return np.maximum(rms, floor)


def init_splats(
    xyz: np.ndarray,
    rgb: np.ndarray,
    *,
    sh_degree: int,
    init_opacity: float = 0.1,
    init_scale: float = 1.0,
    max_points: int | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Gaussians at the SfM points, in the export layout (log scales, logit opacities).

    Args:
        xyz: ``[P, 3]`` point positions.
        rgb: ``[P, 3]`` uint8 point colours.
        sh_degree: the final SH degree; ``shN`` gets ``(sh_degree + 1)² − 1`` zero coefficients.
        init_opacity: opacity of every Gaussian, in ``(0, 1)``.
        init_scale: multiplier of the nearest-neighbour distance.
        max_points: keep a random subset of at most this many points.
        seed: the subset's random seed.

    Returns:
        ``means [N, 3]``, ``quats [N, 4]`` (w, x, y, z), ``scales [N, 3]`` (log), ``opacities [N]``
        (logit), ``sh0 [N, 1, 3]``, ``shN [N, K − 1, 3]``, all float32.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    colours = np.asarray(rgb, dtype=np.float64) / 255.0
    if max_points is not None and len(xyz) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(xyz), size=max_points, replace=False))
        xyz, colours = xyz[keep], colours[keep]
    n = len(xyz)
    scale = np.log(init_scale * knn_distance(xyz))  # [N]
    quats = np.zeros((n, 4))
    quats[:, 0] = 1.0
    n_rest = (sh_degree + 1) ** 2 - 1
    return {
        "means": xyz.astype(np.float32),
        "quats": quats.astype(np.float32),
        "scales": np.repeat(scale[:, None], 3, axis=1).astype(np.float32),
        "opacities": np.full(n, logit(init_opacity), dtype=np.float32),
        "sh0": rgb_to_sh(colours)[:, None, :].astype(np.float32),
        "shN": np.zeros((n, n_rest, 3), dtype=np.float32),
    }
