"""The capture check as the first step of run_sfm: published at once, and fatal for a poor capture on request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sfm_worker.pipeline import run_sfm
from shared.capture.report import CaptureReport
from shared.errors import ErrorCode, StageError
from shared.options.sfm import SfmOptions
from tests.conftest import import_or_skip

import_or_skip("cv2", "the 'sfm' extra (opencv-python-headless)")


def _options(on_poor_capture: str) -> SfmOptions:
    return SfmOptions.from_preset("preview", max_num_features=512, num_threads=2, on_poor_capture=on_poor_capture)


def test_a_poor_capture_with_on_poor_capture_fail_stops_with_poor_capture_and_the_advice(
    static_video: Path, tmp_path: Path
) -> None:
    published: list[CaptureReport] = []
    out_dir = tmp_path / "out" / "scene"
    started = time.monotonic()
    with pytest.raises(StageError) as err:
        run_sfm(static_video, out_dir, _options("fail"), on_capture=published.append)
    assert time.monotonic() - started < 20, "the check runs before any reconstruction"
    assert err.value.code == ErrorCode.POOR_CAPTURE and not err.value.retryable
    assert "Move the camera" in err.value.message and "on_poor_capture=continue" in err.value.message
    assert [r.verdict for r in published] == ["poor"]
    assert err.value.details["capture"] == published[0].model_dump(mode="json")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_poor_capture_with_the_default_continue_is_published_and_the_stage_goes_on(
    static_video: Path, tmp_path: Path
) -> None:
    published: list[CaptureReport] = []
    progress: list[str] = []
    with pytest.raises(StageError) as err:
        run_sfm(
            static_video,
            tmp_path / "scene",
            _options("continue"),
            lambda fraction, message: progress.append(message),
            on_capture=published.append,
        )
    assert err.value.code == ErrorCode.VIDEO_TOO_SHORT  # the frame selection's own check, after the capture check
    assert [r.verdict for r in published] == ["poor"] and "not_moving" in published[0].flags
    assert published[0].summary() in progress  # the verdict shows in the stage's progress message
    assert SfmOptions().on_poor_capture == "continue"


def test_a_broken_capture_check_does_not_cost_the_reconstruction(
    static_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.capture.check

    def broken(*args: object, **kwargs: object) -> CaptureReport:
        raise RuntimeError("a bug in the check")

    monkeypatch.setattr(shared.capture.check, "check_capture", broken)
    published: list[CaptureReport] = []
    with pytest.raises(StageError) as err:
        run_sfm(static_video, tmp_path / "scene", _options("fail"), on_capture=published.append)
    assert err.value.code == ErrorCode.VIDEO_TOO_SHORT  # went on to the next step
    assert published == []
