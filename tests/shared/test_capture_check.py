"""The capture check on short synthetic clips (one kind of bad capture each), the rules, and the real garden clip."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.camera_path import look_at
from shared.capture.report import CaptureReport, CoverageReport, ExposureReport, MotionReport, SharpnessReport
from shared.capture.rules import ADVICE, judge
from shared.errors import ErrorCode, StageError
from shared.synthetic_scene import UP, intrinsics, orbit_cam_from_world, render_view
from shared.video import encode_h264
from tests.conftest import import_or_skip

cv2 = import_or_skip("cv2", "the 'sfm' extra (opencv-python-headless)")

from shared.capture.check import check_capture, sample_indices  # noqa: E402 - needs OpenCV

WIDTH, HEIGHT = 192, 108


def _orbit(n_frames: int = 60, arc_deg: float = 150.0, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    K = intrinsics(width, height)
    return [render_view(p, K, width, height, supersample=1)[0] for p in orbit_cam_from_world(n_frames, arc_deg=arc_deg)]


@pytest.fixture(scope="module")
def orbit_frames() -> list[np.ndarray]:
    """60 frames of the synthetic scene along a 150° orbit (2.5° a frame), 192×108."""
    return _orbit()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Iterable[np.ndarray]], Path]:
    """Write frames as a 30 fps H.264 clip named ``name``; returns its path."""
    folder = tmp_path_factory.mktemp("captures")

    def write(name: str, frames: Iterable[np.ndarray]) -> Path:
        path = folder / f"{name}.mp4"
        encode_h264(path, frames, 30.0)
        return path

    return write


def test_a_steady_orbit_is_good_with_parallax_and_a_wide_arc(orbit_frames, clip) -> None:
    report = check_capture(clip("orbit", orbit_frames))
    assert report.verdict == "good", report
    assert report.flags == [] and report.advice == []
    assert report.motion.parallax is not None and report.motion.parallax > 0.3
    assert not report.motion.turning_in_place
    assert 90 < report.coverage.arc_deg < 200
    assert report.frame_count == report.usable_frames == 60
    assert report.sharpness.blurry_share == 0 and report.exposure.overexposed_share == 0


def test_a_blurred_capture_is_poor_and_says_to_hold_the_camera_steady(orbit_frames, clip) -> None:
    report = check_capture(clip("blurred", (cv2.GaussianBlur(f, (0, 0), 2.5) for f in orbit_frames)))
    assert report.verdict == "poor"
    assert "blurry" in report.flags
    assert report.sharpness.blurry_share == 1.0
    assert report.sharpness.longest_blurry_s > 1.0
    assert ADVICE["blurry"] in report.advice


def test_a_few_motion_blurred_frames_make_a_capture_usable_with_some_blur(orbit_frames, clip) -> None:
    kernel = np.full((1, 15), 1 / 15, np.float32)
    frames = [cv2.filter2D(f, -1, kernel) if 20 <= k < 40 else f for k, f in enumerate(orbit_frames)]
    report = check_capture(clip("some-blur", frames))
    assert report.verdict == "usable", report
    assert report.flags == ["some_blur"]
    assert 0.2 < report.sharpness.blurry_share < 0.5
    assert report.sharpness.longest_blurry_s == pytest.approx(20 / 30, abs=0.1)


def test_a_sped_up_capture_is_poor_and_says_to_walk_slower(clip) -> None:
    report = check_capture(clip("sped-up", _orbit(n_frames=20)))  # the 150° orbit in a third of its frames
    assert report.verdict == "poor"
    assert "too_fast" in report.flags
    assert report.motion.turn_deg_per_frame > 4.0
    assert any("Walk slower" in advice for advice in report.advice)


def test_a_still_shot_is_poor_and_says_to_move(orbit_frames, clip) -> None:
    rng = np.random.default_rng(0)
    still = orbit_frames[20].astype(np.int16)
    frames = (np.clip(still + rng.integers(-2, 3, still.shape), 0, 255).astype(np.uint8) for _ in range(60))
    report = check_capture(clip("still", frames))
    assert report.verdict == "poor"
    assert "not_moving" in report.flags
    assert report.motion.total_view_change < 0.015
    assert report.coverage.arc_deg < 5


def test_a_camera_turning_in_place_is_poor_and_says_to_avoid_it(clip) -> None:
    K = intrinsics(WIDTH, HEIGHT)
    centre = np.array([0.0, -0.2, -1.0])
    poses = [
        look_at(centre, centre + np.array([np.sin(a), 0.15, np.cos(a)]), UP)
        for a in np.radians(np.linspace(-25.0, 25.0, 40))
    ]
    # anti-aliased (supersample=2): aliasing shimmer is the only "parallax" a rendered turn can have
    report = check_capture(clip("turning", (render_view(p, K, WIDTH, HEIGHT, supersample=2)[0] for p in poses)))
    assert report.verdict == "poor"
    assert report.motion.turning_in_place and report.motion.parallax is not None and report.motion.parallax < 0.1
    assert "turning_in_place" in report.flags
    assert any("Avoid turning in place" in advice for advice in report.advice)


@pytest.mark.parametrize(
    ("gain", "offset", "flag", "advice"),
    [(2.5, 60.0, "overexposed", "Avoid bright light"), (0.1, 0.0, "underexposed", "More light")],
)
def test_a_badly_exposed_capture_is_poor_with_the_matching_advice(
    orbit_frames, clip, gain, offset, flag, advice
) -> None:
    frames = (np.clip(f.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8) for f in orbit_frames)
    report = check_capture(clip(flag, frames))
    assert report.verdict == "poor"
    assert flag in report.flags
    assert getattr(report.exposure, f"{flag}_share") > 0.5
    assert any(text.startswith(advice) for text in report.advice)


@pytest.mark.slow
def test_a_full_orbit_closes_its_loop(clip) -> None:
    report = check_capture(clip("full-orbit", _orbit(n_frames=120, arc_deg=360.0, width=128, height=72)))
    assert report.verdict == "good", report
    assert report.coverage.closes_loop
    assert report.coverage.arc_deg > 250


def test_the_report_is_json_and_progress_ends_with_the_verdict(orbit_frames, clip) -> None:
    seen: list[tuple[float, str]] = []
    report = check_capture(clip("orbit-json", orbit_frames[:20]), lambda f, m: seen.append((f, m)))
    again = CaptureReport.model_validate(json.loads(report.model_dump_json()))
    assert again == report
    assert seen[0][0] == 0.0 and seen[-1] == (1.0, report.summary())
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)


def test_a_file_that_is_not_a_video_is_refused_with_invalid_video(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    with pytest.raises(StageError) as err:
        check_capture(bogus)
    assert err.value.code == ErrorCode.INVALID_VIDEO


def test_samples_spread_over_the_whole_video_first_and_last_frames_included() -> None:
    assert sample_indices(10, 64) == list(range(10))
    picked = sample_indices(1000, 64)
    assert len(picked) == 64 and picked[0] == 0 and picked[-1] == 999
    assert max(np.diff(picked)) - min(np.diff(picked)) <= 1
    assert sample_indices(0) == []


def _figures(**changes: object) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "sharpness": SharpnessReport(blurry_share=0.0, longest_blurry_s=0.0, median_sharpness=0.3),
        "motion": MotionReport(
            view_change_per_frame=0.01,
            fast_share=0.0,
            turn_deg_per_frame=1.0,
            total_view_change=0.5,
            parallax=0.5,
            turning_in_place=False,
        ),
        "coverage": CoverageReport(arc_deg=180.0, closes_loop=False),
        "exposure": ExposureReport(overexposed_share=0.0, underexposed_share=0.0, median_brightness=110.0),
        "usable_frames": 100,
    }
    figures.update(changes)
    return figures


def test_the_rules_call_a_narrow_arc_a_hint_and_a_very_narrow_one_usable() -> None:
    assert judge(**_figures())[:2] == ("good", [])
    verdict, flags, advice = judge(**_figures(coverage=CoverageReport(arc_deg=40.0, closes_loop=False)))
    assert (verdict, flags) == ("good", ["partial_coverage"]) and advice == [ADVICE["partial_coverage"]]
    assert judge(**_figures(coverage=CoverageReport(arc_deg=10.0, closes_loop=False)))[0] == "usable"


def test_the_rules_report_the_worst_level_and_flags_most_serious_first() -> None:
    exposure = ExposureReport(overexposed_share=0.3, underexposed_share=0.0, median_brightness=190.0)
    verdict, flags, _ = judge(**_figures(exposure=exposure))
    assert (verdict, flags) == ("usable", ["overexposed"])
    verdict, flags, advice = judge(**_figures(exposure=exposure, usable_frames=5))
    assert verdict == "poor"
    assert flags == ["too_few_frames", "overexposed"]
    assert len(advice) == 2


@pytest.mark.slow
def test_the_garden_clip_is_good_in_seconds(garden_video: Path) -> None:
    started = time.monotonic()
    report = check_capture(garden_video)
    elapsed = time.monotonic() - started
    assert report.verdict == "good", report
    assert report.frame_count == 83 and report.usable_frames == 83
    assert not report.motion.turning_in_place and report.motion.parallax is not None
    assert elapsed < 30  # about 2 s on an idle 2-core machine; room for a loaded CI runner


def test_the_rules_blame_blur_not_length_and_drop_hints_from_a_poor_capture() -> None:
    blurred = SharpnessReport(blurry_share=1.0, longest_blurry_s=3.0, median_sharpness=0.01)
    narrow = CoverageReport(arc_deg=40.0, closes_loop=False)
    verdict, flags, advice = judge(**_figures(sharpness=blurred, coverage=narrow, usable_frames=0))
    assert (verdict, flags) == ("poor", ["blurry"])
    assert advice == [ADVICE["blurry"]]


def test_a_black_video_is_underexposed_and_not_called_blurry(clip) -> None:
    report = check_capture(clip("black", [np.zeros((HEIGHT, WIDTH, 3), np.uint8)] * 30))
    assert report.verdict == "poor"
    assert "underexposed" in report.flags and "blurry" not in report.flags
    assert report.sharpness.blurry_share == 0 and report.exposure.underexposed_share == 1


def test_frames_that_jump_beyond_tracking_count_as_too_fast(clip) -> None:
    rng = np.random.default_rng(3)
    scenes = [
        cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), (0, 0), 1.0) for _ in range(30)
    ]
    report = check_capture(clip("jumps", scenes))  # every frame an unrelated picture
    assert report.verdict == "poor"
    assert "too_fast" in report.flags and report.motion.fast_share > 0.5
    assert json.loads(report.model_dump_json())["motion"]["view_change_per_frame"] >= 0  # finite, not Infinity
