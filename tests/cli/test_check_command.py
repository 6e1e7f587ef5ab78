"""``vid2scene check VIDEO [--json]``: the verdict and advice offline, exit 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.synthetic_scene import intrinsics, orbit_cam_from_world, render_view
from shared.video import encode_h264
from tests.conftest import import_or_skip
from vid2scene.cli import main

import_or_skip("cv2", "the 'sfm' extra (opencv-python-headless)")

WIDTH, HEIGHT = 160, 90


@pytest.fixture(scope="module")
def orbit_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic scene along a 150° orbit, 60 frames: a good capture."""
    K = intrinsics(WIDTH, HEIGHT)
    path = tmp_path_factory.mktemp("check") / "orbit.mp4"
    encode_h264(path, (render_view(p, K, WIDTH, HEIGHT, supersample=1)[0] for p in orbit_cam_from_world(60)), 30.0)
    return path


@pytest.fixture(scope="module")
def still_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One view of the synthetic scene for 40 frames: the camera never moves."""
    K = intrinsics(WIDTH, HEIGHT)
    frame = render_view(orbit_cam_from_world(3)[1], K, WIDTH, HEIGHT, supersample=1)[0]
    path = tmp_path_factory.mktemp("check") / "still.mp4"
    encode_h264(path, [frame] * 40, 30.0)
    return path


def test_check_of_a_good_capture_prints_the_verdict_and_exits_0(orbit_video: Path, capsys) -> None:
    assert main(["check", str(orbit_video)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("capture: GOOD")
    assert "60 frames" in out and "around the subject" in out


def test_check_of_a_still_shot_prints_the_advice_and_exits_1(still_video: Path, capsys) -> None:
    assert main(["check", str(still_video)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("capture: POOR")
    assert "Move the camera" in out


def test_check_json_prints_the_whole_report(still_video: Path, capsys) -> None:
    assert main(["check", str(still_video), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "poor"
    assert "not_moving" in report["flags"]
    assert report["frame_count"] == 40
    assert set(report) >= {"sharpness", "motion", "coverage", "exposure", "advice", "seconds"}


def test_check_of_a_file_that_is_not_a_video_says_invalid_video_and_exits_1(tmp_path: Path, capsys) -> None:
    from PIL import Image

    picture = tmp_path / "holiday.mp4"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(picture, format="PNG")
    assert main(["check", str(picture)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("vid2scene check: INVALID_VIDEO: ") and "image" in captured.err
