"""shared.video: probing, upright decoding and H.264 encoding."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from shared.errors import ErrorCode, StageError
from shared.video import encode_h264, iter_frames, probe_video
from tests.conftest import import_or_skip
from tests.sfm.conftest import textured_frames


def _left_half_white(width: int, height: int) -> np.ndarray:
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:, : width // 2] = 255
    return frame


def test_probe_detects_quicktime_container_from_bytes_not_name(garden_video: Path) -> None:
    info = probe_video(garden_video)  # named .mp4, but its bytes say QuickTime
    assert info.container == "mov"
    assert info.codec == "h264"
    assert (info.width, info.height, info.rotation_deg) == (640, 324, 0)
    assert info.frame_count == 83
    assert info.duration_s == pytest.approx(1.37, abs=0.02)
    assert 55 < info.fps < 65
    assert info.size_bytes == garden_video.stat().st_size


def test_encoded_video_probes_with_its_size_frame_count_and_rate(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_h264(path, textured_frames(12, 64, 48, shift_px=1), 24.0)
    info = probe_video(path)
    assert (info.container, info.codec, info.width, info.height) == ("mp4", "h264", 64, 48)
    assert info.frame_count == 12
    assert info.fps == pytest.approx(24.0, rel=1e-3)
    assert info.duration_s == pytest.approx(0.5, rel=1e-3)


def test_matroska_file_named_mp4_is_reported_as_mkv(tmp_path: Path) -> None:
    encode_h264(tmp_path / "clip.mkv", textured_frames(4, 32, 32, shift_px=1), 10.0)
    renamed = tmp_path / "clip.mp4"
    (tmp_path / "clip.mkv").rename(renamed)
    assert probe_video(renamed).container == "mkv"


def test_odd_frame_sizes_are_cropped_to_even_without_moving_pixels(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    frames = textured_frames(3, 65, 33, shift_px=0)
    encode_h264(path, frames, 10.0, crf=0)
    _, _, rgb = next(iter_frames(path))
    assert rgb.shape == (32, 64, 3)
    luma = np.array([0.299, 0.587, 0.114])
    assert np.abs(rgb @ luma - frames[0][:32, :64] @ luma).mean() < 3  # chroma is subsampled, luma is near-lossless


def test_variable_frame_rate_is_measured_from_timestamps(tmp_path: Path) -> None:
    import av

    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        # 10 frames 1/30 s apart, then 10 frames 1/10 s apart: 19 intervals over 0.3 + 1.0 s
        times_ms = [round(i * 1000 / 30) for i in range(10)] + [400 + i * 100 for i in range(10)]
        for i, ms in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 10, dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    info = probe_video(path)
    assert info.frame_count == 20
    assert info.fps == pytest.approx(19 / 1.3, rel=0.02)
    timestamps = [t for _, t, _ in iter_frames(path)]
    assert timestamps[10] - timestamps[9] == pytest.approx(0.1, abs=0.002)
    assert timestamps[1] - timestamps[0] == pytest.approx(1 / 30, abs=0.002)


@pytest.mark.parametrize("rotation", [90, 270])
def test_portrait_rotation_metadata_yields_upright_frames(tmp_path: Path, rotation: int) -> None:
    """We write with PyAV; OpenCV (its own FFmpeg build) confirms the file and the upright picture independently."""
    cv2 = import_or_skip("cv2", "the 'sfm' extra (opencv-python-headless)")
    path = tmp_path / "portrait.mp4"
    encode_h264(path, [_left_half_white(64, 32)] * 3, 30.0, crf=0, display_rotation_deg=rotation)
    capture = cv2.VideoCapture(str(path))
    try:
        # OpenCV reports the clockwise angle that makes the picture upright: 360° − our counter-clockwise one.
        assert capture.get(cv2.CAP_PROP_ORIENTATION_META) == (360 - rotation) % 360
        ok, bgr = capture.read()  # rotated upright by OpenCV (CAP_PROP_ORIENTATION_AUTO is on by default)
    finally:
        capture.release()
    assert ok and bgr.shape == (64, 32, 3)
    top, bottom = bgr[:8].mean(), bgr[-8:].mean()
    # rotating the stored image 90° counter-clockwise moves its left (white) half to the bottom
    assert (bottom > 200 and top < 50) if rotation == 90 else (top > 200 and bottom < 50)
    info = probe_video(path)
    assert (info.width, info.height, info.rotation_deg) == (32, 64, rotation)
    _, _, rgb = next(iter_frames(path))
    assert rgb.shape == (64, 32, 3)
    assert np.abs(rgb.astype(int) - bgr[..., ::-1].astype(int)).mean() < 2.0  # the same upright picture


def test_frames_are_scaled_down_and_selected_by_index(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    encode_h264(path, textured_frames(10, 128, 64, shift_px=2), 10.0)
    got = list(iter_frames(path, max_long_side=32, indices=[2, 7]))
    assert [i for i, _, _ in got] == [2, 7]
    assert [t for _, t, _ in got] == pytest.approx([0.2, 0.7], abs=1e-3)
    assert all(rgb.shape == (16, 32, 3) and rgb.dtype == np.uint8 for _, _, rgb in got)


def _expect_invalid(path: Path, fragment: str) -> None:
    with pytest.raises(StageError) as err:
        probe_video(path)
    assert err.value.code == ErrorCode.INVALID_VIDEO
    assert fragment in err.value.message
    assert path.name not in err.value.message  # a server's temporary file name means nothing to users
    assert err.value.details["file"] == path.name


def test_zero_byte_file_is_an_invalid_video(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _expect_invalid(path, "empty")


def test_image_renamed_mp4_is_an_invalid_video(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "photo.mp4"
    Image.fromarray(textured_frames(1, 64, 48, shift_px=0)[0]).save(path, format="JPEG")
    _expect_invalid(path, "image")


def test_text_file_is_an_invalid_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("definitely not a video\n" * 20)
    _expect_invalid(path, "not a readable video")


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.99])
def test_truncated_video_is_an_invalid_video(tmp_path: Path, fraction: float) -> None:
    full = tmp_path / "full.mp4"
    encode_h264(full, textured_frames(30, 96, 64, shift_px=2), 30.0)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    _expect_invalid(cut, "truncated")


def test_encoding_without_frames_raises_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "none.mp4"
    with pytest.raises(ValueError):
        encode_h264(path, [], 30.0)
    assert not path.exists()


@pytest.mark.parametrize(
    ("encoder", "file_name", "container", "codec"),
    [
        ("libvpx-vp9", "clip.webm", "webm", "vp9"),
        ("libx265", "clip.mp4", "mp4", "hevc"),
        ("libsvtav1", "clip.mkv", "mkv", "av1"),
    ],
)
def test_other_supported_codecs_and_containers_are_recognised(
    tmp_path: Path, encoder: str, file_name: str, container: str, codec: str
) -> None:
    import av

    path = tmp_path / file_name
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for frame in textured_frames(6, 64, 64, shift_px=2):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    disguised = path.rename(tmp_path / "upload.bin")  # the name says nothing
    info = probe_video(disguised)
    assert (info.container, info.codec, info.width, info.height, info.frame_count) == (container, codec, 64, 64, 6)
    assert len(list(iter_frames(disguised))) == 6
