"""The similarity from COLMAP's arbitrary frame to the normalised world of the scene manifest.

The normalised world is centred on what the cameras look at, scaled so the camera centres lie
within a radius of 1, and oriented so that −y is up (the up of a level OpenCV camera) and the
cameras' mean viewing direction, made level, is +z.

Up is the normal of the least-squares plane through the camera centres when they spread over a
plane (an orbit: the most reliable cue), otherwise the cameras' mean −y axis (a hand-held phone is
held roughly level).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Use the plane of the camera centres as the horizon when its normal is within this of the cameras' up.
_PLANE_MAX_ANGLE_DEG = 30.0


@dataclass(frozen=True)
class SimilarityTransform:
    """``x_world = scale * rotation @ x_colmap + translation``."""

    scale: float
    rotation: np.ndarray  # [3, 3]
    translation: np.ndarray  # [3]

    def apply_points(self, xyz: np.ndarray) -> np.ndarray:
        """Map points ``[M, 3]`` into the world."""
        return self.scale * np.asarray(xyz, dtype=np.float64) @ self.rotation.T + self.translation

    def apply_cam_from_world(self, cam_from_colmap: np.ndarray) -> np.ndarray:
        """Re-express cameras ``[N, 3, 4]`` (``cam_from_colmap``) as ``cam_from_world`` ``[N, 3, 4]``.

        Camera coordinates are scaled with the world, so the cameras stay rigid and their
        projections (and so the intrinsics) are unchanged.
        """
        R_c, t_c = cam_from_colmap[:, :, :3], cam_from_colmap[:, :, 3]
        R_new = R_c @ self.rotation.T  # [N, 3, 3]
        t_new = self.scale * t_c - R_new @ self.translation  # [N, 3]
        return np.concatenate([R_new, t_new[:, :, None]], axis=2)


def camera_centers(cam_from_world: np.ndarray) -> np.ndarray:
    """Camera centres ``-Rᵀ t`` ``[N, 3]`` of cameras ``[N, 3, 4]`` (or ``[N, 4, 4]``)."""
    R, t = cam_from_world[:, :3, :3], cam_from_world[:, :3, 3]
    return -np.einsum("nji,nj->ni", R, t)


def estimate_up(cam_from_world: np.ndarray) -> np.ndarray:
    """The world's up direction ``[3]`` (unit) from cameras ``[N, 3, 4]``; see the module docstring."""
    camera_up = -cam_from_world[:, 1, :3].mean(axis=0)  # cameras' −y axes in the world, averaged
    camera_up /= max(np.linalg.norm(camera_up), 1e-12)
    centers = camera_centers(cam_from_world)
    if len(centers) < 3:
        return camera_up
    _, spread, vt = np.linalg.svd(centers - centers.mean(axis=0), full_matrices=False)
    planar = spread[2] < 0.5 * spread[1] and spread[1] > 0.2 * spread[0]
    normal = vt[2] if np.dot(vt[2], camera_up) >= 0 else -vt[2]
    if planar and np.degrees(np.arccos(np.clip(normal @ camera_up, -1.0, 1.0))) < _PLANE_MAX_ANGLE_DEG:
        return normal
    return camera_up


def focus_point(cam_from_world: np.ndarray) -> np.ndarray:
    """The point ``[3]`` nearest (least squares) to all optical axes; the centres' mean if they are parallel."""
    centers = camera_centers(cam_from_world)
    forward = cam_from_world[:, 2, :3]  # cameras' +z axes in the world, [N, 3]
    projectors = np.eye(3)[None] - forward[:, :, None] * forward[:, None, :]  # [N, 3, 3]
    A = projectors.sum(axis=0)
    b = np.einsum("nij,nj->i", projectors, centers)
    eigenvalues = np.linalg.eigvalsh(A)
    if eigenvalues[0] < 0.02 * len(centers):  # axes (nearly) parallel: no well-defined focus
        return centers.mean(axis=0)
    point = np.linalg.solve(A, b)
    spread = np.linalg.norm(centers - centers.mean(axis=0), axis=1).max()
    if np.linalg.norm(point - centers.mean(axis=0)) > 10.0 * max(spread, 1e-9):
        return centers.mean(axis=0)
    return point


def normalizing_similarity(cam_from_colmap: np.ndarray) -> SimilarityTransform:
    """The similarity ``world_from_colmap`` that normalises a reconstruction.

    Args:
        cam_from_colmap: registered cameras ``[N, 3, 4]`` in COLMAP's frame.

    Returns:
        The similarity; applied, the cameras are centred on their focus point, lie within radius 1,
        −y is up and the mean level viewing direction is +z.
    """
    up = estimate_up(cam_from_colmap)
    down = -up
    forward = cam_from_colmap[:, 2, :3].mean(axis=0)
    forward = forward - (forward @ down) * down
    if np.linalg.norm(forward) < 1e-6:  # looking straight down or up on average: any level axis
        forward = np.cross(down, np.eye(3)[np.argmin(np.abs(down))])
    forward /= np.linalg.norm(forward)
    right = np.cross(down, forward)
    rotation = np.stack([right, down, forward])  # rows: world axes in COLMAP coordinates

    centre = focus_point(cam_from_colmap)
    radius = np.linalg.norm(camera_centers(cam_from_colmap) - centre, axis=1).max()
    scale = 1.0 / max(radius, 1e-12)
    return SimilarityTransform(scale=scale, rotation=rotation, translation=-scale * rotation @ centre)


def umeyama(source: np.ndarray, target: np.ndarray) -> SimilarityTransform:
    """The least-squares similarity mapping points ``source`` ``[N, 3]`` onto ``target`` ``[N, 3]`` (Umeyama 1991)."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - mu_s, target - mu_t
    cov = dst.T @ src / len(source)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    rotation = U @ S @ Vt
    scale = float(np.trace(np.diag(D) @ S) / (src**2).sum(axis=1).mean())
    return SimilarityTransform(scale=scale, rotation=rotation, translation=mu_t - scale * rotation @ mu_s)
