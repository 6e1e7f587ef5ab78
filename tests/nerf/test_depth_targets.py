"""The TensoRF stage's depth targets (nerf_worker.depth_targets), added on top of the shared scene loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nerf_worker.depth_targets import depth_targets
from nerf_worker.rays import rays_at_pixels
from shared.errors import ErrorCode, StageError
from shared.scene_loader import load_scene


def test_each_target_is_a_ray_of_a_training_view_that_reaches_an_sfm_point_at_its_distance(nerf_scene: Path) -> None:
    data = load_scene(nerf_scene, 32)
    depth = depth_targets(data, nerf_scene, error_scale_px=1.0)
    assert len(depth.view) > 100
    assert depth.view.min() >= 0 and depth.view.max() < len(data.train_frames)
    poses = torch.as_tensor(data.poses(data.train_frames))[torch.as_tensor(depth.view)]
    origins, dirs = rays_at_pixels(data.camera, poses, torch.as_tensor(depth.uv))
    ends = (origins + torch.as_tensor(depth.distance)[:, None] * dirs).numpy()  # [M, 3]
    sample = ends[:: max(1, len(ends) // 200)]  # [≤400, 3]: enough to check, quick to compare
    nearest = np.linalg.norm(sample[:, None, :] - data.points_xyz[None, :, :], axis=-1).min(axis=1)
    assert nearest.max() < 1e-4
    # the synthetic scene's point_error is 0.5 px: reliability 1 / (1 + 0.5²)
    np.testing.assert_allclose(depth.weight, 0.8, rtol=1e-6)


def test_a_scene_without_tracks_has_no_depth_targets(nerf_scene: Path, tmp_path: Path) -> None:
    scene = Path(shutil.copytree(nerf_scene, tmp_path / "scene"))
    (scene / "tracks.npz").unlink()
    assert len(depth_targets(load_scene(scene, 32), scene, error_scale_px=1.0).view) == 0


def test_tracks_whose_arrays_disagree_are_an_invalid_scene(nerf_scene: Path, tmp_path: Path) -> None:
    scene = Path(shutil.copytree(nerf_scene, tmp_path / "scene"))
    np.savez(scene / "tracks.npz", point_index=np.arange(5, dtype=np.int32), frame_index=np.zeros(4, dtype=np.int32))
    with pytest.raises(StageError) as info:
        depth_targets(load_scene(scene, 32), scene, error_scale_px=1.0)
    assert info.value.code == ErrorCode.INVALID_SCENE
    assert "point_index and frame_index differ in length" in info.value.message
