"""Held-out evaluation over a manifest's test split (shared.heldout)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.heldout import evaluate_heldout
from shared.manifest import FrameRecord, PinholeCamera, SceneManifest, Similarity, assign_splits

IDENTITY = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]


def _manifest(n: int = 17) -> SceneManifest:
    frames = [
        FrameRecord(file=f"images/{i:03d}.png", video_frame=i, timestamp_s=i / 10, cam_from_world=IDENTITY, split=s)
        for i, s in enumerate(assign_splits(n))
    ]
    return SceneManifest(
        camera=PinholeCamera(fx=100, fy=100, cx=32, cy=24, width=64, height=48),
        frames=frames,
        world_from_colmap=Similarity(scale=1, rotation=np.eye(3).tolist(), translation=[0, 0, 0]),
        scene_radius=1.0,
    )


def _images(manifest: SceneManifest, height: int, width: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f.file: rng.random((height, width, 3)) for f in manifest.frames}


def test_only_test_frames_are_rendered_with_the_camera_scaled_to_the_image() -> None:
    manifest = _manifest()
    images = _images(manifest, 24, 32)
    seen: list[tuple[str, PinholeCamera]] = []

    def render(frame: FrameRecord, camera: PinholeCamera) -> np.ndarray:
        seen.append((frame.file, camera))
        return images[frame.file]

    result = evaluate_heldout(render, manifest, images)
    assert [file for file, _ in seen] == ["images/000.png", "images/008.png", "images/016.png"]
    assert all(cam.width == 32 and cam.height == 24 and cam.fx == pytest.approx(50) for _, cam in seen)
    assert result["n_frames"] == 3
    assert result["psnr"] == 100.0
    assert result["ssim"] == pytest.approx(1.0)


def test_scores_are_the_means_of_each_frames_psnr_and_ssim() -> None:
    manifest = _manifest()
    images = _images(manifest, 24, 32)
    offsets = {"images/000.png": 0.1, "images/008.png": 0.01, "images/016.png": 0.0}

    def render(frame: FrameRecord, camera: PinholeCamera) -> np.ndarray:
        return np.clip(images[frame.file] + offsets[frame.file], 0, 1)

    def truth(frame: FrameRecord) -> np.ndarray:  # images may also come from a function
        return np.clip(images[frame.file], 0, 1)

    result = evaluate_heldout(render, manifest, truth)
    per_frame = [s["psnr"] for s in result["frames"]]
    assert result["psnr"] == pytest.approx(np.mean(per_frame))
    assert per_frame[0] < per_frame[1] < per_frame[2]
    assert result["ssim"] < 1.0


def test_a_rendering_of_the_wrong_size_is_an_error() -> None:
    manifest = _manifest()
    images = _images(manifest, 24, 32)
    with pytest.raises(ValueError, match="rendered"):
        evaluate_heldout(lambda frame, camera: np.zeros((10, 10, 3)), manifest, images)
