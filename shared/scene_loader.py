"""Loading a scene directory for training: the one reader, and the one set of rules, of both training stages.

A scene directory is what the SfM stage writes (``scene.json``, ``images/``, ``points.ply`` and
``tracks.npz``). :func:`load_scene` reads it with every frame's image resized to the training size and
the camera scaled to match. Every way the directory can be unusable is an ``INVALID_SCENE`` error
that names the file:

- no ``scene.json``, or one that is not a valid manifest;
- fewer than :data:`MIN_TRAIN_FRAMES` training frames, or no held-out (``test``) frame to score;
- an image that is missing, unreadable, or not the size of the manifest's camera;
- a ``points.ply`` that cannot be read, holds a non-finite position, or fewer than :data:`MIN_POINTS` points
  (``tracks.npz`` counts its points, so they are refused rather than dropped).

A stage adds what only it needs on top (the TensoRF stage its depth targets from ``tracks.npz``:
:mod:`nerf_worker.depth_targets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from shared.errors import ErrorCode, StageError
from shared.manifest import SCENE_FILE, FrameRecord, PinholeCamera, SceneManifest, read_points_ply
from shared.video import output_size

#: The fewest training frames a scene may have.
MIN_TRAIN_FRAMES = 2
#: The fewest finite sparse points a scene may have (the Gaussians start at them; the field's box bounds them).
MIN_POINTS = 4


@dataclass(frozen=True)
class SceneData:
    """A scene ready to train on: images in memory at the training size, and the matching camera.

    Attributes:
        manifest: the scene's manifest (its camera at the original size).
        camera: the manifest camera scaled to the training size.
        train_frames: the ``train`` frames in time order.
        test_frames: the ``test`` (held-out) frames in time order.
        images: ``FrameRecord.file`` → ``[H, W, 3]`` float32 image in ``[0, 1]`` at the training size.
        points_xyz: ``[P, 3]`` float32 sparse points in the normalised world, in ``points.ply``'s order.
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


def invalid_scene(message: str, **details: object) -> StageError:
    """The ``INVALID_SCENE`` error with ``message`` (raise it, from the cause when there is one)."""
    return StageError(ErrorCode.INVALID_SCENE, message, details=details)


def load_image(path: Path, camera: PinholeCamera, width: int, height: int) -> np.ndarray:
    """Read a scene's image as ``[height, width, 3]`` float32 in ``[0, 1]``, shrunk with a box filter.

    Args:
        path: the image file.
        camera: the manifest's camera: the image must be its size.
        width: the training width (at most the camera's).
        height: the training height (at most the camera's).

    Raises:
        StageError: ``INVALID_SCENE`` when the file is missing, not a readable image, or not the
            camera's size (its intrinsics would not fit it).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.size != (camera.width, camera.height):
                raise invalid_scene(
                    f"the scene's image {path.name} is {img.size[0]}×{img.size[1]}, "
                    f"but its camera is {camera.width}×{camera.height}",
                    file=str(path),
                )
            rgb = img.convert("RGB")
            if rgb.size != (width, height):
                rgb = rgb.resize((width, height), Image.Resampling.BOX)
            return np.asarray(rgb, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as exc:
        raise invalid_scene(f"the scene's image {path.name} cannot be read ({exc})", file=str(path)) from exc


def _load_manifest(scene_dir: Path) -> SceneManifest:
    if not (scene_dir / SCENE_FILE).is_file():
        raise invalid_scene(f"{scene_dir} has no {SCENE_FILE}: it is not a scene directory", scene_dir=str(scene_dir))
    try:
        return SceneManifest.load(scene_dir)
    except (ValidationError, ValueError, OSError) as exc:
        raise invalid_scene(f"{SCENE_FILE} is not a valid scene manifest ({exc})") from exc


def _load_points(scene_dir: Path, points_file: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        xyz, rgb = read_points_ply(scene_dir / points_file)
    except (OSError, ValueError, StopIteration) as exc:
        raise invalid_scene(f"the sparse points {points_file} cannot be read ({exc})") from exc
    broken = int((~np.isfinite(xyz).all(axis=1)).sum())
    if broken:
        raise invalid_scene(f"the sparse points {points_file} hold {broken} positions that are not finite numbers")
    if len(xyz) < MIN_POINTS:
        raise invalid_scene(
            f"the scene has {len(xyz)} sparse points; training needs at least {MIN_POINTS} to start from"
        )
    return xyz, rgb


def load_scene(scene_dir: Path, max_long_side: int) -> SceneData:
    """Read a scene directory and its images at a long side of at most ``max_long_side``.

    Args:
        scene_dir: directory holding ``scene.json``, the images and ``points.ply``.
        max_long_side: the training images' long side in pixels (never scaled up).

    Returns:
        The scene, with every frame's image in memory.

    Raises:
        StageError: ``INVALID_SCENE`` for any of the faults listed in this module's docstring.
    """
    scene_dir = Path(scene_dir)
    manifest = _load_manifest(scene_dir)
    train_frames, test_frames = manifest.split("train"), manifest.split("test")
    if len(train_frames) < MIN_TRAIN_FRAMES:
        raise invalid_scene(
            f"the scene has {len(train_frames)} training frames; at least {MIN_TRAIN_FRAMES} are needed"
        )
    if not test_frames:
        raise invalid_scene("the scene has no held-out (test) frames to evaluate on")
    xyz, rgb = _load_points(scene_dir, manifest.points_file)
    width, height = output_size(manifest.camera.width, manifest.camera.height, max_long_side)
    images = {f.file: load_image(scene_dir / f.file, manifest.camera, width, height) for f in manifest.frames}
    return SceneData(
        manifest=manifest,
        camera=manifest.camera.scaled(width, height),
        train_frames=train_frames,
        test_frames=test_frames,
        images=images,
        points_xyz=xyz,
        points_rgb=rgb,
    )
