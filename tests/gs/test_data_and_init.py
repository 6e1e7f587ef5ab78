"""Loading a scene for training and starting Gaussians at its SfM points (gs_worker.data, gs_worker.init)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from gs_worker.data import load_scene
from gs_worker.init import SH_C0, init_splats, knn_distance
from shared.errors import ErrorCode, StageError
from shared.manifest import SCENE_FILE, SceneManifest, write_points_ply


def test_frames_are_resized_to_the_long_side_with_the_camera_scaled_to_match(tiny_scene: Path) -> None:
    data = load_scene(tiny_scene, max_long_side=32)
    manifest = SceneManifest.load(tiny_scene)
    assert (data.camera.width, data.camera.height) == (32, 18)
    assert data.camera.fx == pytest.approx(manifest.camera.fx / 2)
    assert data.camera.cx == pytest.approx(manifest.camera.cx / 2)
    image = data.images[data.train_frames[0].file]
    assert image.shape == (18, 32, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.std() > 0.01
    assert [f.split for f in data.test_frames] == ["test"] * 2
    assert len(data.train_frames) == 14


def test_images_are_never_scaled_up(tiny_scene: Path) -> None:
    data = load_scene(tiny_scene, max_long_side=1000)
    assert (data.camera.width, data.camera.height) == (64, 36)


def test_a_directory_without_a_manifest_is_an_invalid_scene(tmp_path: Path) -> None:
    with pytest.raises(StageError) as info:
        load_scene(tmp_path, 64)
    assert info.value.code == ErrorCode.INVALID_SCENE
    assert "scene.json" in info.value.message


def test_a_scene_without_sparse_points_is_an_invalid_scene(tiny_scene: Path, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(tiny_scene, scene)
    write_points_ply(scene / "points.ply", np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8))
    with pytest.raises(StageError) as info:
        load_scene(scene, 64)
    assert info.value.code == ErrorCode.INVALID_SCENE
    assert "sparse points" in info.value.message


def test_a_missing_image_is_an_invalid_scene(tiny_scene: Path, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    shutil.copytree(tiny_scene, scene)
    first = SceneManifest.load(scene).frames[3].file
    (scene / first).unlink()
    with pytest.raises(StageError) as info:
        load_scene(scene, 64)
    assert info.value.code == ErrorCode.INVALID_SCENE
    assert Path(first).name in info.value.message
    assert (scene / SCENE_FILE).exists()


def test_gaussians_start_at_the_points_with_their_colours_and_neighbour_scales() -> None:
    grid = np.stack(np.meshgrid(np.arange(5), np.arange(5), np.arange(5), indexing="ij"), -1).reshape(-1, 3) * 0.2
    rgb = np.random.default_rng(0).integers(0, 256, size=(len(grid), 3)).astype(np.uint8)
    splats = init_splats(grid, rgb, sh_degree=2, init_opacity=0.1)
    np.testing.assert_allclose(splats["means"], grid, atol=1e-6)
    np.testing.assert_allclose(SH_C0 * splats["sh0"][:, 0] + 0.5, rgb / 255.0, atol=1e-5)
    assert splats["shN"].shape == (len(grid), 8, 3) and not splats["shN"].any()
    # on a grid of spacing 0.2, every point's 3 nearest neighbours are 0.2 away
    np.testing.assert_allclose(np.exp(splats["scales"]), 0.2, rtol=1e-5)
    np.testing.assert_allclose(1 / (1 + np.exp(-splats["opacities"])), 0.1, rtol=1e-5)
    np.testing.assert_allclose(splats["quats"], np.tile([1.0, 0.0, 0.0, 0.0], (len(grid), 1)))


def test_initial_scales_follow_local_point_density() -> None:
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(200, 3)) * 0.01
    sparse = rng.normal(size=(200, 3)) * 1.0 + 10.0
    d = knn_distance(np.concatenate([dense, sparse]))
    assert np.median(d[:200]) * 20 < np.median(d[200:])


def test_duplicate_points_still_get_a_positive_scale() -> None:
    xyz = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]], dtype=float)
    assert np.all(knn_distance(xyz) > 0)


def test_a_point_cloud_larger_than_the_cap_is_subsampled() -> None:
    xyz = np.random.default_rng(2).random((500, 3))
    splats = init_splats(xyz, np.zeros((500, 3), dtype=np.uint8), sh_degree=0, max_points=120)
    assert len(splats["means"]) == 120
    assert splats["shN"].shape == (120, 0, 3)


def test_mcmc_starts_from_gsplats_mcmc_recipe_and_default_from_its_default_recipe() -> None:
    from shared.options.gs import SplatOptions

    mcmc = SplatOptions.from_preset("standard", strategy="mcmc")
    assert (mcmc.initial_opacity(), mcmc.initial_scale()) == (0.5, 0.1)
    default = SplatOptions.from_preset("standard")
    assert (default.initial_opacity(), default.initial_scale()) == (0.1, 1.0)
    chosen = SplatOptions.from_preset("standard", strategy="mcmc", init_opacity=0.3, init_scale=2.0)
    assert (chosen.initial_opacity(), chosen.initial_scale()) == (0.3, 2.0)
