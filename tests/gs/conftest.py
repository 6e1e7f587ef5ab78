"""Fixtures of the Gaussian-splatting tests: small synthetic scene directories with true cameras."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.synthetic_scene import write_ground_truth_scene


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64×36, 16-frame synthetic scene with 600 surface points (fast tests)."""
    scene = tmp_path_factory.mktemp("gs") / "tiny-scene"
    write_ground_truth_scene(scene, width=64, height=36, n_frames=16, seed=1, n_points=600)
    return scene


@pytest.fixture(scope="session")
def ci_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CI-size synthetic scene: 160×90, 40 frames (5 held out), 4000 surface points + 1000 on the backdrop."""
    scene = tmp_path_factory.mktemp("gs") / "ci-scene"
    write_ground_truth_scene(scene, width=160, height=90, n_frames=40, seed=0, backdrop_points=1000)
    return scene
