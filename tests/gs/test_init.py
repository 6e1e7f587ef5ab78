"""Starting Gaussians at a scene's SfM points (gs_worker.init); the scene loader's tests are tests/shared/test_scene_loader.py."""

from __future__ import annotations

import numpy as np

from gs_worker.init import SH_C0, init_splats, knn_distance


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
