"""sfm_worker.frames: the sharpest frame of each evenly spaced time window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sfm_worker.frames import select_frames, sharpness, target_count
from shared.errors import ErrorCode, StageError
from shared.video import encode_h264, probe_video
from tests.sfm.conftest import textured_frames


def _blur(image: np.ndarray, passes: int = 4) -> np.ndarray:
    out: np.ndarray = image.astype(np.float32)
    for _ in range(passes):
        out = (out + np.roll(out, 1, 0) + np.roll(out, -1, 0) + np.roll(out, 1, 1) + np.roll(out, -1, 1)) / 5
    return out.round().astype(np.uint8)


def test_sharpness_is_higher_for_a_sharp_image_than_its_blurred_copy() -> None:
    image = textured_frames(1, 64, 64, shift_px=0)[0].mean(axis=2)
    assert sharpness(image) > 5 * sharpness(_blur(image[..., None].repeat(3, 2)).mean(axis=2))


def test_selection_takes_the_sharpest_frame_of_each_window_across_the_whole_video(tmp_path: Path) -> None:
    # 24 frames, 6 windows of 4: in each window only frame 4k+2 is sharp
    frames = textured_frames(24, 96, 64, shift_px=2)
    frames = [f if i % 4 == 2 else _blur(f) for i, f in enumerate(frames)]
    video = tmp_path / "clip.mp4"
    encode_h264(video, frames, 24.0, crf=10)
    info = probe_video(video)
    selection = select_frames(
        video, info, tmp_path / "frames", count=6, max_long_side=96, min_frames=3, min_frame_difference=1.0
    )
    assert [f.video_frame for f in selection.frames] == [2, 6, 10, 14, 18, 22]
    assert selection.frames_decoded == 24
    assert all((tmp_path / "frames" / f.file).is_file() for f in selection.frames)
    assert [f.timestamp_s for f in selection.frames] == pytest.approx([i / 24 for i in (2, 6, 10, 14, 18, 22)])


def test_target_count_is_capped_by_max_frames_and_the_video_length(panning_video: Path) -> None:
    info = probe_video(panning_video)  # 30 frames
    assert target_count(info, 150, None) == 30
    assert target_count(info, 150, 12) == 12
    assert target_count(info, 20, None) == 20


def test_frames_are_written_with_their_long_side_capped(panning_video: Path, tmp_path: Path) -> None:
    from PIL import Image

    info = probe_video(panning_video)
    selection = select_frames(
        panning_video, info, tmp_path, count=10, max_long_side=80, min_frames=3, min_frame_difference=1.0
    )
    assert len(selection.frames) == 10
    with Image.open(tmp_path / selection.frames[0].file) as image:
        assert image.size == (80, 48)


def test_static_camera_is_rejected_as_video_too_short(static_video: Path, tmp_path: Path) -> None:
    info = probe_video(static_video)
    with pytest.raises(StageError) as err:
        select_frames(static_video, info, tmp_path, count=20, max_long_side=160, min_frames=8, min_frame_difference=1.5)
    assert err.value.code == ErrorCode.VIDEO_TOO_SHORT
    assert "camera does not move" in err.value.message
