"""Fixtures of the TensoRF tests: tiny synthetic scenes (options: :mod:`tests.nerf.tiny`)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def nerf_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64×36 synthetic scene: 16 views over a 120° arc (2 held out), true cameras and points."""
    from shared.synthetic_scene import write_ground_truth_scene

    scene = tmp_path_factory.mktemp("nerf_scene")
    write_ground_truth_scene(scene, width=64, height=36, n_frames=16, seed=1, n_points=1500, arc_deg=120)
    return scene


@pytest.fixture(scope="session")
def few_view_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64×36 synthetic scene with few views: 12 over a 120° arc, 10 of them for training."""
    from shared.synthetic_scene import write_ground_truth_scene

    scene = tmp_path_factory.mktemp("few_view_scene")
    write_ground_truth_scene(scene, width=64, height=36, n_frames=12, seed=1, n_points=1500, arc_deg=120)
    return scene
