"""DS-NeRF depth targets: the TensoRF stage's addition to the shared scene loader (:mod:`shared.scene_loader`).

Every observation of a sparse point ``(point_index, frame_index)`` in ``tracks.npz`` in a training
view becomes a ray through the point's projection, whose target is the point's distance from the
camera. Its reliability is ``1 / (1 + (e / s)²)`` for the point's reprojection error ``e``
(``point_error``, per point or per observation) and a scale ``s`` (``depth_error_scale_px``), so
well-triangulated points pull hardest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.scene_loader import SceneData, invalid_scene


@dataclass(frozen=True)
class DepthTargets:
    """SfM points seen from training views, as rays with a target distance."""

    view: np.ndarray  # [M] int64 index into SceneData.train_frames
    uv: np.ndarray  # [M, 2] float32 pixel position at the training resolution
    distance: np.ndarray  # [M] float32 distance from the camera centre to the point
    weight: np.ndarray  # [M] float32 reliability in (0, 1]


def depth_targets(data: SceneData, scene_dir: Path, *, error_scale_px: float) -> DepthTargets:
    """Turn the scene's point tracks into depth-supervised rays of its training views.

    Args:
        data: the loaded scene (its manifest's frame order is what ``frame_index`` counts, its
            points' order what ``point_index`` counts; its camera is at the training resolution).
        scene_dir: the scene directory, where ``tracks.npz`` lies.
        error_scale_px: reprojection error (pixels) at which the reliability is 1/2.

    Returns:
        The targets; empty when the scene has no tracks file.

    Raises:
        StageError: ``INVALID_SCENE`` when the tracks file cannot be read or its arrays disagree.
    """
    manifest, camera, points = data.manifest, data.camera, data.points_xyz
    empty = DepthTargets(
        view=np.zeros(0, np.int64), uv=np.zeros((0, 2), np.float32), distance=np.zeros(0, np.float32),
        weight=np.zeros(0, np.float32),
    )  # fmt: skip
    if not manifest.tracks_file or not (scene_dir / manifest.tracks_file).exists():
        return empty
    try:
        with np.load(scene_dir / manifest.tracks_file) as tracks:
            point_index = tracks["point_index"].astype(np.int64)
            frame_index = tracks["frame_index"].astype(np.int64)
            error = tracks["point_error"].astype(np.float64) if "point_error" in tracks else None
    except (OSError, KeyError, ValueError) as exc:
        raise invalid_scene(f"cannot read {manifest.tracks_file}: {exc}") from exc
    if len(point_index) != len(frame_index):
        raise invalid_scene(f"{manifest.tracks_file}: point_index and frame_index differ in length")
    ok = (point_index >= 0) & (point_index < len(points)) & (frame_index >= 0) & (frame_index < len(manifest.frames))
    if error is None:
        obs_error = np.zeros(len(point_index))
    elif len(error) == len(points):
        obs_error = error[np.clip(point_index, 0, max(len(points) - 1, 0))]
    elif len(error) == len(point_index):
        obs_error = error
    else:
        raise invalid_scene(f"{manifest.tracks_file}: point_error matches neither the points nor the observations")

    train_slot = np.full(len(manifest.frames), -1, dtype=np.int64)
    train_ids = [i for i, f in enumerate(manifest.frames) if f.split == "train"]
    train_slot[train_ids] = np.arange(len(train_ids))
    ok &= train_slot[np.clip(frame_index, 0, len(manifest.frames) - 1)] >= 0
    point_index, frame_index, obs_error = point_index[ok], frame_index[ok], obs_error[ok]
    if not len(point_index):
        return empty

    poses = np.stack([f.cam_from_world_matrix() for f in manifest.frames])[frame_index]  # [M, 4, 4]
    xyz = points[point_index].astype(np.float64)
    cam = np.einsum("mij,mj->mi", poses[:, :3, :3], xyz) + poses[:, :3, 3]
    z = cam[:, 2]
    safe_z = np.where(z > 1e-6, z, 1.0)
    uv = np.stack([camera.fx * cam[:, 0] / safe_z + camera.cx, camera.fy * cam[:, 1] / safe_z + camera.cy], axis=1)
    keep = (z > 1e-6) & (uv[:, 0] >= 0) & (uv[:, 0] < camera.width) & (uv[:, 1] >= 0) & (uv[:, 1] < camera.height)
    keep &= np.isfinite(obs_error)
    return DepthTargets(
        view=train_slot[frame_index[keep]],
        uv=uv[keep].astype(np.float32),
        distance=np.linalg.norm(cam[keep], axis=1).astype(np.float32),
        weight=(1.0 / (1.0 + (obs_error[keep] / error_scale_px) ** 2)).astype(np.float32),
    )
