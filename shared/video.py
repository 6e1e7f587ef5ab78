"""Video files: probing, decoding upright RGB frames, and H.264 encoding.

This is the one module that touches PyAV. It needs no torch, so the web server uses it to check
uploads (:func:`probe_video_header`: headers and index only, nothing decoded, bounded work), the
SfM stage to check (:func:`probe_video`: every packet demuxed, the first frame decoded) and read
frames (:func:`iter_frames`), and the training stages to write flythroughs (:func:`encode_h264`).

Containers and codecs are detected from the bytes, never from the file name. Rotation metadata
(the display matrix a phone writes for portrait video) is honoured: sizes are reported and frames
are yielded as they are meant to be displayed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shared import mp4_boxes
from shared.errors import ErrorCode, StageError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

logger = logging.getLogger(__name__)

ContainerName = Literal["mp4", "mov", "mkv", "webm"]
CodecName = Literal["h264", "hevc", "vp9", "av1"]

#: Accepted containers, by the first name in FFmpeg's demuxer name (``"mov,mp4,m4a,..."``).
_DEMUXERS: dict[str, str] = {"mov": "mp4", "matroska": "mkv"}
#: FFmpeg decoder names mapped to the codec we report.
_CODECS: dict[str, CodecName] = {
    "h264": "h264",
    "hevc": "hevc",
    "vp9": "vp9",
    "libvpx-vp9": "vp9",
    "av1": "av1",
    "libdav1d": "av1",
    "libaom-av1": "av1",
}
_SUPPORTED_TEXT = "MP4, MOV, MKV or WebM with H.264, HEVC, VP9 or AV1"


class VideoInfo(BaseModel):
    """What :func:`probe_video` found out about a video file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    container: ContainerName = Field(description="detected from the bytes, not the file name")
    codec: CodecName
    width: int = Field(gt=0, description="displayed width in pixels, after rotation")
    height: int = Field(gt=0, description="displayed height in pixels, after rotation")
    rotation_deg: int = Field(description="counter-clockwise display rotation applied to frames: 0, 90, 180 or 270")
    frame_count: int = Field(
        ge=0,
        description="frames in the file: packets counted (probe_video), or the index / duration × rate "
        "(probe_video_header)",
    )
    duration_s: float = Field(ge=0, description="from the first frame's timestamp to the end of the last frame")
    fps: float = Field(ge=0, description="average frame rate from the timestamps (variable frame rate honoured)")
    size_bytes: int = Field(ge=0)


def _invalid(path: Path, what: str, *, hint: str | None = None, **details: object) -> StageError:
    """An ``INVALID_VIDEO`` error saying what is wrong and what to do.

    The message does not name the file: on the server it is a temporary upload whose name means
    nothing to the user. ``details["file"]`` keeps the name for logs.
    """
    hint = hint or f"Upload a video file ({_SUPPORTED_TEXT})."
    message = f"The video is unusable: {what}. {hint}"
    return StageError(ErrorCode.INVALID_VIDEO, message, details={"file": path.name, **details})


_TRUNCATED_HINT = "The upload or copy was probably cut off: send the complete file again."
#: Codec options that make FFmpeg's stream analysis skip decoding (the upload check decodes nothing).
_NO_DECODING = {"skip_frame": "all"}
#: The most packets the upload check demuxes to find where a Matroska/WebM file really ends.
TAIL_PACKETS = 4096
#: How far before its declared end the upload check seeks to find a Matroska/WebM file's last packets.
_TAIL_SECONDS = 1.0


class VideoLimits(BaseModel):
    """What the upload check accepts, read from headers before anything is decoded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_frames: int = Field(gt=0, description="more frames: VIDEO_TOO_LONG")
    max_duration_s: float = Field(gt=0, description="longer: VIDEO_TOO_LONG")
    max_pixel_rate: float = Field(gt=0, description="width × height × fps above this: INVALID_VIDEO")


@dataclass
class ProbeWork:
    """What :func:`probe_video_header` did (it decodes nothing)."""

    opened_container: bool = False  # whether FFmpeg was asked to parse the file (an MP4 over the limits is not)
    packets_demuxed: int = 0


def _open(path: Path, options: dict[str, str] | None = None) -> InputContainer:
    """Open ``path`` with PyAV, turning every failure into ``INVALID_VIDEO`` (with the cut-off hint for a cut MP4)."""
    import av

    if not path.is_file():
        raise _invalid(path, "the file does not exist")
    if path.stat().st_size == 0:
        raise _invalid(path, "the file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r", options=options)
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise _unreadable(
            path, "the file is not a readable video, or it is incomplete or corrupt", ffmpeg_error=str(exc)
        ) from exc


def _unreadable(path: Path, what: str, **details: str) -> StageError:
    """``INVALID_VIDEO`` saying ``what``, or that the file was cut off when it is an MP4 that ends before its index."""
    if mp4_boxes.looks_cut_off(path):
        return _invalid(path, "the video is truncated: the file ends before its index", hint=_TRUNCATED_HINT, **details)
    return _invalid(path, what, **details)


def _video_stream(path: Path, container: InputContainer) -> tuple[ContainerName, CodecName, VideoStream]:
    """The container name, the codec and the first video stream; ``INVALID_VIDEO`` for anything unsupported."""
    container_name = _container_name(path, container.format.name)
    if not container.streams.video:
        raise _unreadable(path, "the file has no video stream")
    stream = container.streams.video[0]
    decoder = stream.codec_context.codec.name
    if decoder not in _CODECS:
        raise _invalid(path, f"its video codec '{decoder}' is not supported", codec=decoder)
    return container_name, _CODECS[decoder], stream


def _cut_short(path: Path, declared_s: float, last_s: float) -> StageError:
    return _invalid(
        path,
        f"the video is truncated: its header says {declared_s:.2f} s but its content ends at {last_s:.2f} s",
        hint=_TRUNCATED_HINT,
        declared_duration_s=round(declared_s, 3),
        frames_end_s=round(last_s, 3),
    )


def _truncation_tolerance_s(declared_s: float, fps: float) -> float:
    """How far before the declared end the last frame may end: three frame periods or 2 %, whichever is more."""
    return max(3.0 / fps if fps > 0 else 0.1, 0.02 * declared_s)


def _container_name(path: Path, demuxer: str) -> ContainerName:
    first = demuxer.split(",")[0]
    if first not in _DEMUXERS:
        kind = "an image" if demuxer.endswith("_pipe") or demuxer == "image2" else f"a '{demuxer}' file"
        raise _invalid(path, f"this is {kind}, not a supported video container", demuxer=demuxer)
    if first == "mov":
        with open(path, "rb") as f:
            head = f.read(12)
        return "mov" if head[4:12] == b"ftypqt  " else "mp4"
    with open(path, "rb") as f:
        head = f.read(4096)
    return "webm" if b"webm" in head[:64] or b"\x42\x82\x84webm" in head else "mkv"


def _index_end(stream: VideoStream) -> int:
    """The byte offset where the stream's last indexed packet ends (0 when the container has no index)."""
    entries = stream.index_entries
    if len(entries) == 0:
        return 0
    last = entries[len(entries) - 1]
    return int(last.pos) + int(last.size) if last.pos >= 0 else 0


def _display_rotation(frame: VideoFrame) -> int:
    """The frame's counter-clockwise display rotation in degrees, snapped to 0/90/180/270."""
    degrees = float(getattr(frame, "rotation", 0) or 0)
    return round(degrees / 90.0) % 4 * 90


def _upright(rgb: np.ndarray, rotation_deg: int) -> np.ndarray:
    """Rotate a decoded ``[H, W, 3]`` image counter-clockwise by ``rotation_deg`` for display."""
    k = (rotation_deg // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=k)) if k else rgb


def probe_video(path: Path) -> VideoInfo:
    """Check that ``path`` is a decodable video we support and describe it.

    Demuxes every packet of the video stream to count frames and read their timestamps, and decodes
    the first frame to prove the stream decodes and to read its rotation: work that grows with the
    file, for a worker. The web server uses :func:`probe_video_header` instead.

    Args:
        path: the file to check.

    Returns:
        The video's :class:`VideoInfo`.

    Raises:
        StageError: ``INVALID_VIDEO`` for a missing, empty, truncated or corrupt file, a file that is
            not a video (an image renamed ``.mp4``), or an unsupported container or codec.
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        container_name, codec, stream = _video_stream(path, container)
        timestamps: list[float] = []
        last_duration = 0.0
        first_frame = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is not None and packet.time_base is not None:
                    timestamps.append(float(packet.pts * packet.time_base))
                    last_duration = float((packet.duration or 0) * packet.time_base)
                if first_frame is None:
                    for frame in packet.decode():
                        first_frame = frame
                        break
            if first_frame is None:
                for frame in stream.codec_context.decode(None):
                    first_frame = frame
                    break
        except av.FFmpegError as exc:
            raise _invalid(
                path, "the video is truncated or corrupt", hint=_TRUNCATED_HINT, ffmpeg_error=str(exc)
            ) from exc
        if first_frame is None or not timestamps:
            raise _invalid(path, "no frame could be decoded: the file is truncated or corrupt", hint=_TRUNCATED_HINT)
        header_frames = int(stream.frames or 0)
        if header_frames and len(timestamps) < header_frames:
            raise _invalid(
                path,
                f"the video is truncated: its header lists {header_frames} frames but only {len(timestamps)} are present",
                hint=_TRUNCATED_HINT,
                header_frames=header_frames,
                present_frames=len(timestamps),
            )
        if _index_end(stream) > path.stat().st_size:
            raise _invalid(path, "the video is truncated: its last frames are cut off", hint=_TRUNCATED_HINT)
        timestamps.sort()
        rotation = _display_rotation(first_frame)
        width, height = first_frame.width, first_frame.height
        if rotation in (90, 270):
            width, height = height, width
        span = timestamps[-1] - timestamps[0]
        if len(timestamps) > 1 and span > 0:
            fps = (len(timestamps) - 1) / span
            frame_period = last_duration if last_duration > 0 else span / (len(timestamps) - 1)
        else:
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frame_period = last_duration if last_duration > 0 else (1.0 / fps if fps > 0 else 0.0)
        # Only the video's own duration is comparable with its frames (audio may run longer).
        declared = _declared_duration_s(container, stream) if stream.duration or len(container.streams) == 1 else None
        frames_end = timestamps[-1] + frame_period
        if (
            container_name in ("mkv", "webm")
            and declared
            and frames_end < declared - _truncation_tolerance_s(declared, fps)
        ):
            raise _cut_short(path, declared, frames_end)
        return VideoInfo(
            container=container_name,
            codec=codec,
            width=width,
            height=height,
            rotation_deg=rotation,
            frame_count=len(timestamps),
            duration_s=span + frame_period,
            fps=fps,
            size_bytes=path.stat().st_size,
        )
    finally:
        container.close()


def _declared_duration_s(container: InputContainer, stream: VideoStream) -> float | None:
    """The duration the headers declare (the stream's, else the container's), in seconds; None when unknown."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


@dataclass
class _Tail:
    """What a bounded demux saw: where packets of any stream and of the video end, and how many video packets."""

    any_end_s: float | None = None
    video_end_s: float | None = None
    video_packets: int = 0
    at_eof: bool = False


def _demux_tail(
    container: InputContainer, stream: VideoStream, seek_to_s: float | None, work: ProbeWork, max_video_packets: int
) -> _Tail:
    """Demux every stream from ``seek_to_s`` (the start when None or unseekable) until the end of the file,
    ``max_video_packets`` video packets, or eight times as many packets in all."""
    import av

    if seek_to_s is not None:
        try:
            container.seek(max(int(seek_to_s * 1_000_000), 0), backward=True)
        except av.FFmpegError:  # no index to seek with (a cut file lost its cues): read from where we are
            logger.debug("seek failed; demuxing from the start instead")
    tail = _Tail()
    for packet in container.demux():
        if packet.size == 0:  # a flush packet: the end of the file
            tail.at_eof = True
            return tail
        work.packets_demuxed += 1
        if packet.pts is not None and packet.time_base is not None:
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            tail.any_end_s = end if tail.any_end_s is None else max(tail.any_end_s, end)
            if packet.stream.index == stream.index:
                tail.video_end_s = end if tail.video_end_s is None else max(tail.video_end_s, end)
        if packet.stream.index == stream.index:
            tail.video_packets += 1
        if tail.video_packets >= max_video_packets or work.packets_demuxed >= 8 * max_video_packets:
            return tail
    tail.at_eof = True
    return tail


def probe_video_header(path: Path, limits: VideoLimits, *, work: ProbeWork | None = None) -> VideoInfo:
    """Check an upload from its headers and index only: nothing is decoded, and the work is bounded.

    What a decode bomb (a million tiny frames, a huge frame rate) would make expensive is read
    from the headers and refused before any packet is demuxed: the frame count (the MP4 index, or
    Matroska duration × rate), the duration and the pixel rate. FFmpeg's stream analysis runs with
    decoding switched off. A Matroska/WebM file is then checked for truncation by demuxing at most
    :data:`TAIL_PACKETS` packets from just before its declared end (a cut file's last frame ends
    well before it), or, without a declared duration (a live recording), by counting its packets up
    to the frame limit; an MP4 by comparing the end of its index with the file size. Rotation is read
    from the MP4/QuickTime track header (Matroska files report 0; the SfM worker applies the
    rotation it decodes). An MP4's frame count and duration are read from its box headers first,
    so a bomb with a million-entry index is refused before FFmpeg allocates that index.

    Args:
        path: the uploaded file.
        limits: the frame, duration and pixel-rate limits.
        work: counts the packets demuxed, when given.

    Returns:
        The video's :class:`VideoInfo` (frame count and timing from the headers).

    Raises:
        StageError: ``VIDEO_TOO_LONG`` over the frame or duration limit; ``INVALID_VIDEO`` over the
            pixel-rate limit, or for what :func:`probe_video` refuses that headers show (not a
            video, unsupported, truncated, no frames).
    """
    path = Path(path)
    work = work if work is not None else ProbeWork()
    track = mp4_boxes.video_track(path) if path.is_file() else None
    if track is not None:  # refuse a huge MP4 index before FFmpeg parses it
        _check_limits(path, limits, track.sample_count, track.duration_s, 0.0)
    work.opened_container = True
    container = _open(path, _NO_DECODING)
    try:
        container_name, codec, stream = _video_stream(path, container)
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if width <= 0 or height <= 0:
            raise _unreadable(path, "its headers give no picture size: the file is truncated or corrupt")
        declared = _declared_duration_s(container, stream)
        is_mp4 = container_name in ("mp4", "mov")
        frames = len(stream.index_entries) if is_mp4 else 0
        if is_mp4 and frames and declared:
            fps = frames / declared
        else:
            fps = float(stream.average_rate or stream.guessed_rate or 0)
        if not frames and declared and fps:
            frames = round(declared * fps)
        _check_limits(path, limits, frames, declared, width * height * fps)
        if is_mp4:
            if frames == 0:
                raise _invalid(
                    path, "its index lists no frames: the file is truncated or corrupt", hint=_TRUNCATED_HINT
                )
            if _index_end(stream) > path.stat().st_size:
                raise _invalid(path, "the video is truncated: its last frames are cut off", hint=_TRUNCATED_HINT)
            duration = declared or 0.0
        else:
            frames, duration, fps = _matroska_timing(path, container, stream, declared, frames, fps, limits, work)
            _check_limits(path, limits, frames, duration, width * height * fps)
        rotation = track.rotation_deg if is_mp4 and track is not None else 0
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            container=container_name,
            codec=codec,
            width=width,
            height=height,
            rotation_deg=rotation,
            frame_count=frames,
            duration_s=duration,
            fps=fps,
            size_bytes=path.stat().st_size,
        )
    finally:
        container.close()


def _matroska_timing(
    path: Path,
    container: InputContainer,
    stream: VideoStream,
    declared: float | None,
    frames: int,
    fps: float,
    limits: VideoLimits,
    work: ProbeWork,
) -> tuple[int, float, float]:
    """A Matroska/WebM file's frames, duration and rate, checked against where its packets really end.

    With a declared duration, at most :data:`TAIL_PACKETS` video packets from just before it are
    demuxed: packets ending well before it mean a cut file. Without one (a live recording) the
    video packets are counted from the start, at most one past the frame limit.
    """
    seek_to = declared - _TAIL_SECONDS if declared else None
    tail = _demux_tail(container, stream, seek_to, work, TAIL_PACKETS if declared else limits.max_frames + 1)
    if tail.video_end_s is None:
        raise _invalid(path, "no frame was found: the file is truncated or corrupt", hint=_TRUNCATED_HINT)
    if declared is not None:
        # The declared duration covers every stream (audio may run past the last frame), so the
        # packets of every stream are compared with it.
        assert tail.any_end_s is not None
        if not tail.at_eof:
            return frames, declared, fps
        if tail.any_end_s < declared - _truncation_tolerance_s(declared, fps):
            raise _cut_short(path, declared, tail.any_end_s)
        end = min(tail.video_end_s, declared)  # the video's own end when another stream runs longer
        return (round(end * fps) if fps > 0 else frames), end, fps
    if not tail.at_eof:
        raise _too_long(path, f"it has more than {limits.max_frames} frames", frames=tail.video_packets)
    end = tail.video_end_s
    return tail.video_packets, end, (tail.video_packets / end if end > 0 else fps)


def _too_long(path: Path, what: str, **details: object) -> StageError:
    message = (
        f"The video is too long to process: {what}. Trim it to the part that shows the scene, then upload it again."
    )
    return StageError(ErrorCode.VIDEO_TOO_LONG, message, details={"file": path.name, **details})


def _check_limits(path: Path, limits: VideoLimits, frames: int, duration_s: float | None, pixel_rate: float) -> None:
    """Refuse what the headers say is over ``limits`` (``VIDEO_TOO_LONG`` / ``INVALID_VIDEO``)."""
    if frames > limits.max_frames:
        raise _too_long(path, f"it has {frames} frames, over the limit of {limits.max_frames}", frames=frames)
    if duration_s is not None and duration_s > limits.max_duration_s:
        raise _too_long(
            path,
            f"it lasts {duration_s:.0f} s, over the limit of {limits.max_duration_s:.0f} s",
            duration_s=round(duration_s, 3),
        )
    if pixel_rate > limits.max_pixel_rate:
        raise _invalid(
            path,
            f"its width × height × frame rate is {pixel_rate:.3g} pixels per second, over the limit of "
            f"{limits.max_pixel_rate:.3g}",
            hint="Re-encode it at a lower resolution or frame rate, then upload it again.",
            pixel_rate=pixel_rate,
        )


def output_size(width: int, height: int, max_long_side: int | None) -> tuple[int, int]:
    """The size of a ``width × height`` image scaled down so its long side is at most ``max_long_side``.

    Never scales up; keeps the aspect ratio (sides rounded to whole pixels).

    Returns:
        ``(width, height)`` of the scaled image.
    """
    long_side = max(width, height)
    if max_long_side is None or long_side <= max_long_side:
        return width, height
    scale = max_long_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def iter_frames(
    path: Path,
    *,
    max_long_side: int | None = None,
    indices: Iterable[int] | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode a video's frames upright, in decode (presentation) order.

    Args:
        path: the video.
        max_long_side: scale frames down so their long side is at most this (never up).
        indices: 0-based indices of the decoded frames to yield; all frames when ``None``. Frames
            not asked for are decoded (the codec needs them) but not converted.

    Yields:
        ``(index, timestamp_s, rgb)``: the frame's 0-based index among decoded frames, its
        presentation time in seconds from the first frame, and an ``[H, W, 3]`` uint8 RGB image
        rotated as the display matrix asks.

    Raises:
        StageError: ``INVALID_VIDEO`` when the file cannot be opened or decoding fails.
    """
    import av

    path = Path(path)
    wanted = None if indices is None else sorted(set(int(i) for i in indices))
    last_wanted = wanted[-1] if wanted else None
    wanted_set = None if wanted is None else set(wanted)
    if wanted is not None and not wanted:
        return
    container = _open(path)
    try:
        if not container.streams.video:
            raise _invalid(path, "the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        t0: float | None = None
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                seconds = float(frame.time) if frame.time is not None else 0.0
                if t0 is None:
                    t0 = seconds
                if wanted_set is not None and index not in wanted_set:
                    if last_wanted is not None and index > last_wanted:
                        break
                    continue
                width, height = output_size(frame.width, frame.height, max_long_side)
                rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
                yield index, max(seconds - t0, 0.0), _upright(rgb, _display_rotation(frame))
                if last_wanted is not None and index >= last_wanted:
                    break
        except av.FFmpegError as exc:
            raise _invalid(path, f"decoding failed at frame {index + 1} ({exc})") from exc
    finally:
        container.close()


def encode_h264(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    crf: int = 20,
    display_rotation_deg: int = 0,
) -> None:
    """Write frames as an H.264 (libx264, yuv420p) video; the container follows ``path``'s suffix.

    Odd widths or heights (yuv420p needs even ones) are cropped by one pixel at the right or bottom,
    which keeps pixel coordinates (and so intrinsics) unchanged. MP4/MOV files get ``+faststart``.

    Args:
        path: output file, e.g. ``flythrough-gs.mp4``.
        frames: ``[H, W, 3]`` uint8 RGB images, all the same size.
        fps: frames per second.
        crf: x264 constant rate factor (lower is better quality; 18–23 is typical).
        display_rotation_deg: counter-clockwise display rotation written as stream metadata (phone
            portrait video has 90 or 270); the pixels are stored as given.

    Raises:
        ValueError: no frames, a frame that is not ``[H, W, 3]`` uint8, or sizes that change.
    """
    import av

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    container = av.open(str(path), mode="w", options=options)
    try:
        stream = None
        size: tuple[int, int] | None = None
        for rgb in frames:
            rgb = np.asarray(rgb)
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise ValueError(f"frames must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
            h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
            if h == 0 or w == 0:
                raise ValueError(f"frame of size {rgb.shape[1]}x{rgb.shape[0]} is too small")
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = w, h
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(int(crf))}
                if display_rotation_deg % 360:
                    stream.set_display_rotation(display_rotation_deg % 360)
                size = (h, w)
            elif (h, w) != size:
                raise ValueError(f"frame size changed from {size} to {(h, w)}")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
            container.mux(stream.encode(frame))
        if stream is None:
            raise ValueError("no frames to encode")
        container.mux(stream.encode(None))
    except BaseException:
        container.close()
        path.unlink(missing_ok=True)
        raise
    container.close()
