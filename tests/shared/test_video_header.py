"""The upload check reads headers only: decode bombs are refused before a packet is read, truncation is found cheaply."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ErrorCode, StageError
from shared.video import TAIL_PACKETS, ProbeWork, VideoLimits, encode_h264, probe_video, probe_video_header
from tests.fixtures.videos import cut, decode_bomb, encode_video

LIMITS = VideoLimits(max_frames=36_000, max_duration_s=600.0, max_pixel_rate=7680 * 4320 * 30)


def _refusal(path: Path, limits: VideoLimits = LIMITS) -> tuple[StageError, ProbeWork]:
    work = ProbeWork()
    with pytest.raises(StageError) as caught:
        probe_video_header(path, limits, work=work)
    return caught.value, work


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_decode_bomb_is_refused_from_its_headers_before_any_packet_is_read(tmp_path: Path, suffix: str) -> None:
    bomb = decode_bomb(tmp_path / f"bomb{suffix}", 40_000)  # 16×16, 40,000 frames, 26 minutes at 25 fps
    error, work = _refusal(bomb)
    assert error.code is ErrorCode.VIDEO_TOO_LONG
    assert "40000 frames" in error.message
    assert work.packets_demuxed == 0
    assert work.opened_container is (suffix == ".mkv")  # an MP4's own boxes already say it is too long


def test_a_long_video_is_refused_by_duration_and_a_huge_frame_rate_by_pixel_rate(tmp_path: Path) -> None:
    bomb = decode_bomb(tmp_path / "bomb.mp4", 3000, fps=25)  # 120 s
    error, work = _refusal(bomb, LIMITS.model_copy(update={"max_duration_s": 60.0}))
    assert error.code is ErrorCode.VIDEO_TOO_LONG and "120 s" in error.message
    error, work = _refusal(bomb, LIMITS.model_copy(update={"max_pixel_rate": 16 * 16 * 10}))
    assert error.code is ErrorCode.INVALID_VIDEO and "pixels per second" in error.message
    assert work.packets_demuxed == 0


def test_the_header_probe_agrees_with_the_full_probe_on_a_complete_video(tmp_path: Path) -> None:
    for path in (
        encode_video(tmp_path / "clip.webm", "libvpx-vp9", 20),
        encode_video(tmp_path / "clip.mkv", "libx264", 20),
        encode_video(tmp_path / "clip.mp4", "libx264", 20),
    ):
        work = ProbeWork()
        header = probe_video_header(path, LIMITS, work=work)
        full = probe_video(path)
        assert (header.container, header.codec, header.width, header.height) == (
            full.container,
            full.codec,
            full.width,
            full.height,
        )
        assert header.frame_count == full.frame_count == 20
        assert header.duration_s == pytest.approx(full.duration_s, abs=0.01)
        assert header.fps == pytest.approx(30.0, rel=0.01)
        assert work.packets_demuxed <= TAIL_PACKETS


@pytest.mark.parametrize("rotation", [90, 270])
def test_the_header_probe_reads_the_display_rotation_of_an_mp4_without_decoding(tmp_path: Path, rotation: int) -> None:
    import numpy as np

    path = tmp_path / "portrait.mov"
    encode_h264(path, [np.zeros((32, 48, 3), np.uint8)] * 3, 10.0, display_rotation_deg=rotation)
    info = probe_video_header(path, LIMITS)
    assert (info.rotation_deg, info.width, info.height) == (rotation, 32, 48)


@pytest.mark.parametrize(("suffix", "encoder"), [(".webm", "libvpx-vp9"), (".mkv", "libx264")])
def test_a_matroska_file_cut_at_40_percent_is_truncated_with_the_send_again_hint(
    tmp_path: Path, suffix: str, encoder: str
) -> None:
    full = encode_video(tmp_path / f"clip{suffix}", encoder, 60, gop=10)  # 2 s
    assert probe_video_header(full, LIMITS).duration_s == pytest.approx(2.0, abs=0.05)
    for probe in (lambda p: probe_video_header(p, LIMITS), probe_video):
        with pytest.raises(StageError) as caught:
            probe(cut(full, 0.6))
        assert caught.value.code is ErrorCode.INVALID_VIDEO
        assert "truncated" in caught.value.message and "send the complete file again" in caught.value.message
    error, work = _refusal(cut(full, 0.4))
    assert "header says 2.00 s" in error.message
    assert work.packets_demuxed <= TAIL_PACKETS


def test_an_mp4_cut_before_its_index_gets_the_cut_off_hint_not_the_generic_message(tmp_path: Path) -> None:
    full = encode_video(tmp_path / "clip.mp4", "libx264", 30)  # index written last, as FFmpeg does by default
    for fraction in (0.4, 0.9):
        for probe in (lambda p: probe_video_header(p, LIMITS), probe_video):
            with pytest.raises(StageError) as caught:
                probe(cut(full, fraction))
            assert caught.value.code is ErrorCode.INVALID_VIDEO
            assert "the file ends before its index" in caught.value.message
            assert "send the complete file again" in caught.value.message


def test_an_mp4_with_its_index_first_and_its_frames_cut_is_truncated(tmp_path: Path) -> None:
    import numpy as np

    full = tmp_path / "faststart.mp4"
    rng = np.random.default_rng(0)
    encode_h264(full, [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(20)], 10.0)
    error, work = _refusal(cut(full, 0.6))
    assert error.code is ErrorCode.INVALID_VIDEO and "its last frames are cut off" in error.message
    assert work.packets_demuxed == 0


def test_a_live_recording_without_a_duration_is_counted_up_to_the_frame_limit(tmp_path: Path) -> None:
    live = encode_video(tmp_path / "recorded.webm", "libvpx-vp9", 50, live=True)
    work = ProbeWork()
    info = probe_video_header(live, LIMITS, work=work)
    assert (info.frame_count, work.packets_demuxed) == (50, 50)
    assert info.duration_s == pytest.approx(probe_video(live).duration_s, abs=0.01)
    error, work = _refusal(live, LIMITS.model_copy(update={"max_frames": 40}))
    assert error.code is ErrorCode.VIDEO_TOO_LONG
    assert work.packets_demuxed == 41  # it stopped one past the limit


@pytest.mark.parametrize(("suffix", "video", "audio"), [(".webm", "libvpx-vp9", "libopus"), (".mkv", "libx264", "aac")])
def test_audio_that_runs_past_the_last_frame_is_not_mistaken_for_truncation(
    tmp_path: Path, suffix: str, video: str, audio: str
) -> None:
    clip = encode_video(tmp_path / f"clip{suffix}", video, 60, gop=10, audio=(audio, 2.6))  # 2 s of video
    info = probe_video_header(clip, LIMITS)
    assert info.duration_s == pytest.approx(2.0, abs=0.05)  # the video's end, not the audio's
    assert info.frame_count == 60
    assert probe_video(clip).duration_s == pytest.approx(2.0, abs=0.05)
    error, _ = _refusal(cut(clip, 0.4))
    assert "truncated" in error.message
