"""Loading a scene directory for training: frames resized to the training size, cameras, points.

A scene directory is what the SfM stage writes (``scene.json``, ``images/``, ``points.ply``). Every
failure to read it is an ``INVALID_SCENE`` error that names the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from shared.errors import ErrorCode, StageError
from shared.manifest import SCENE_FILE, FrameRecord, PinholeCamera, SceneManifest, read_points_ply
from shared.video import output_size


@dataclass(frozen=True)
class SceneData:
    """A scene ready to train on: images in memory at the training size, and the matching camera.

    Attributes:
        manifest: the scene's manifest (its camera at the original size).
        camera: the manifest camera scaled to the training size.
        train_frames: the ``train`` frames in time order.
        test_frames: the ``test`` (held-out) frames in time order.
        images: ``FrameRecord.file`` → ``[H, W, 3]`` float32 image in ``[0, 1]`` at the training size.
        points_xyz: ``[P, 3]`` float32 sparse points in the normalised world.
        points_rgb: ``[P, 3]`` uint8 colours of the points.
    """

    manifest: SceneManifest
    camera: PinholeCamera
    train_frames: list[FrameRecord]
    test_frames: list[FrameRecord]
    images: dict[str, np.ndarray]
    points_xyz: np.ndarray
    points_rgb: np.ndarray

    def poses(self, frames: list[FrameRecord]) -> np.ndarray:
        """``cam_from_world`` of ``frames`` as ``[F, 4, 4]`` float32."""
        return np.stack([f.cam_from_world_matrix() for f in frames]).astype(np.float32)

    def stack(self, frames: list[FrameRecord]) -> np.ndarray:
        """The images of ``frames`` as ``[F, H, W, 3]`` float32."""
        return np.stack([self.images[f.file] for f in frames])

    def scene_scale(self) -> float:
        """How far the training cameras spread: the largest distance of a centre from their mean.

        gsplat's trainer scales the position learning rate and the densification thresholds by it.
        """
        centers = np.stack([f.camera_center() for f in self.train_frames])
        spread = float(np.linalg.norm(centers - centers.mean(axis=0), axis=1).max())
        return spread if spread > 1e-6 else float(self.manifest.scene_radius)


def _invalid(message: str, **details: object) -> StageError:
    return StageError(ErrorCode.INVALID_SCENE, message, details=details)


def load_image(path: Path, width: int, height: int) -> np.ndarray:
    """Read an image file as ``[height, width, 3]`` float32 in ``[0, 1]``, resized with a box filter.

    Raises:
        StageError: ``INVALID_SCENE`` when the file is missing or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            if rgb.size != (width, height):
                rgb = rgb.resize((width, height), Image.Resampling.BOX)
            return np.asarray(rgb, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as exc:
        raise _invalid(f"the scene's image {path.name} cannot be read ({exc})", file=str(path)) from exc


def load_scene(scene_dir: Path, max_long_side: int) -> SceneData:
    """Read a scene directory and its images at a long side of at most ``max_long_side``.

    Args:
        scene_dir: directory holding ``scene.json``, the images and ``points.ply``.
        max_long_side: the training images' long side in pixels (never scaled up).

    Returns:
        The scene, with every frame's image in memory.

    Raises:
        StageError: ``INVALID_SCENE`` when a file is missing or unreadable, the scene has fewer than 2
            training frames or no held-out ones, or fewer than 4 finite sparse points.
    """
    scene_dir = Path(scene_dir)
    if not (scene_dir / SCENE_FILE).is_file():
        raise _invalid(f"{scene_dir} has no {SCENE_FILE}: it is not a scene directory", scene_dir=str(scene_dir))
    try:
        manifest = SceneManifest.load(scene_dir)
    except (ValidationError, ValueError) as exc:
        raise _invalid(f"{SCENE_FILE} is not a valid scene manifest ({exc})") from exc
    train_frames, test_frames = manifest.split("train"), manifest.split("test")
    if len(train_frames) < 2:
        raise _invalid(f"the scene has {len(train_frames)} training frames; at least 2 are needed")
    if not test_frames:
        raise _invalid("the scene has no held-out (test) frames to evaluate on")
    width, height = output_size(manifest.camera.width, manifest.camera.height, max_long_side)
    images = {f.file: load_image(scene_dir / f.file, width, height) for f in manifest.frames}
    points_path = scene_dir / manifest.points_file
    try:
        xyz, rgb = read_points_ply(points_path)
    except (OSError, ValueError, StopIteration) as exc:
        raise _invalid(f"the sparse points {manifest.points_file} cannot be read ({exc})") from exc
    finite = np.isfinite(xyz).all(axis=1)
    xyz, rgb = xyz[finite], rgb[finite]
    if len(xyz) < 4:
        raise _invalid(f"the scene has {len(xyz)} sparse points; training needs at least 4 to start from")
    return SceneData(
        manifest=manifest,
        camera=manifest.camera.scaled(width, height),
        train_frames=train_frames,
        test_frames=test_frames,
        images=images,
        points_xyz=xyz,
        points_rgb=rgb,
    )
