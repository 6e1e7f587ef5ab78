"""run_sfm on the real garden orbit (83 frames, 1.4 s): nearly every selected frame registers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfm_worker.pipeline import run_sfm
from shared.manifest import SceneManifest
from shared.options.sfm import SfmOptions


@pytest.mark.slow
def test_garden_video_registers_at_least_95_percent_of_selected_frames(garden_video: Path, tmp_path: Path) -> None:
    options = SfmOptions.from_preset("preview", max_frames=30, max_num_features=1024, max_long_side=480)
    result = run_sfm(garden_video, tmp_path / "scene", options)
    assert result.frames_decoded == 83
    assert result.frames_selected == 30
    assert result.frames_registered >= 0.95 * result.frames_selected
    assert result.mean_reprojection_error < 1.0
    manifest = SceneManifest.load(result.scene_dir)
    assert len(manifest.frames) == result.frames_registered
    assert manifest.source["container"] == "mov"
