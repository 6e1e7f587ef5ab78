"""A scene directory loaded for training: resized images, poses, sparse points and depth targets.

Depth targets (DS-NeRF): every observation of a sparse point ``(point_index, frame_index)`` in
``tracks.npz`` in a training view becomes a ray through the point's projection, whose target is the
point's distance from the camera. Its reliability is ``1 / (1 + (e / s)²)`` for the point's
reprojection error ``e`` (``point_error``, per point or per observation) and a scale ``s``
(``depth_error_scale_px``), so well-triangulated points pull hardest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import ErrorCode, StageError
from shared.manifest import PinholeCamera, SceneManifest, read_points_ply
from shared.video import output_size


@dataclass(frozen=True)
class DepthTargets:
    """SfM points seen from training views, as rays with a target distance."""

    view: np.ndarray  # [M] int64 index into SceneData.train_* arrays
    uv: np.ndarray  # [M, 2] float32 pixel position at the training resolution
    distance: np.ndarray  # [M] float32 distance from the camera centre to the point
    weight: np.ndarray  # [M] float32 reliability in (0, 1]


@dataclass(frozen=True)
class SceneData:
    """Everything training reads from a scene directory."""

    manifest: SceneManifest
    camera: PinholeCamera  # at the training resolution
    train_images: np.ndarray  # [T, H, W, 3] uint8
    train_cam_from_world: np.ndarray  # [T, 4, 4] float32
    test_images: dict[str, np.ndarray]  # frame file -> [H, W, 3] float32 in [0, 1]
    points: np.ndarray  # [P, 3] float32
    depth: DepthTargets


def _invalid(message: str) -> StageError:
    return StageError(ErrorCode.INVALID_SCENE, message)


def _load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            if rgb.size != size:
                rgb = rgb.resize(size, Image.Resampling.BOX if rgb.size[0] > size[0] else Image.Resampling.BICUBIC)
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise _invalid(f"cannot read frame {path.name}: {exc}") from exc


def depth_targets(
    manifest: SceneManifest,
    camera: PinholeCamera,
    scene_dir: Path,
    points: np.ndarray,
    *,
    error_scale_px: float,
) -> DepthTargets:
    """Turn the scene's point tracks into depth-supervised rays of the training views.

    Args:
        manifest: the scene (its frame order is what ``frame_index`` counts).
        camera: the camera at the training resolution.
        scene_dir: where ``tracks.npz`` lies.
        points: the sparse points.  # [P, 3]
        error_scale_px: reprojection error (pixels) at which the reliability is 1/2.

    Returns:
        The targets; empty when the scene has no tracks file.
    """
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
        raise _invalid(f"cannot read {manifest.tracks_file}: {exc}") from exc
    if len(point_index) != len(frame_index):
        raise _invalid(f"{manifest.tracks_file}: point_index and frame_index differ in length")
    ok = (point_index >= 0) & (point_index < len(points)) & (frame_index >= 0) & (frame_index < len(manifest.frames))
    if error is None:
        obs_error = np.zeros(len(point_index))
    elif len(error) == len(points):
        obs_error = error[np.clip(point_index, 0, max(len(points) - 1, 0))]
    elif len(error) == len(point_index):
        obs_error = error
    else:
        raise _invalid(f"{manifest.tracks_file}: point_error matches neither the points nor the observations")

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


def load_scene(scene_dir: Path, *, max_long_side: int, depth_error_scale_px: float = 1.0) -> SceneData:
    """Read a scene directory written by the SfM stage.

    Args:
        scene_dir: holds ``scene.json``, the images, ``points.ply`` and (optionally) ``tracks.npz``.
        max_long_side: training images are resized so their long side is at most this.
        depth_error_scale_px: see :func:`depth_targets`.

    Returns:
        The loaded scene.

    Raises:
        StageError: ``INVALID_SCENE`` when a file is missing or unreadable, or fewer than two
            training views exist.
    """
    scene_dir = Path(scene_dir)
    try:
        manifest = SceneManifest.load(scene_dir)
    except (OSError, ValueError) as exc:
        raise _invalid(f"{scene_dir} holds no readable scene.json: {exc}") from exc
    train = manifest.split("train")
    if len(train) < 2:
        raise _invalid(f"the scene has {len(train)} training frames; at least 2 are needed")
    try:
        points, _ = read_points_ply(scene_dir / manifest.points_file)
    except (OSError, ValueError, StopIteration) as exc:
        raise _invalid(f"cannot read the sparse points {manifest.points_file}: {exc}") from exc
    width, height = output_size(manifest.camera.width, manifest.camera.height, max_long_side)
    camera = manifest.camera.scaled(width, height)
    train_images = np.stack([_load_image(scene_dir / f.file, (width, height)) for f in train])
    test_images = {
        f.file: _load_image(scene_dir / f.file, (width, height)).astype(np.float32) / 255.0
        for f in manifest.split("test")
    }
    return SceneData(
        manifest=manifest,
        camera=camera,
        train_images=train_images,
        train_cam_from_world=np.stack([f.cam_from_world_matrix() for f in train]).astype(np.float32),
        test_images=test_images,
        points=points,
        depth=depth_targets(manifest, camera, scene_dir, points, error_scale_px=depth_error_scale_px),
    )
