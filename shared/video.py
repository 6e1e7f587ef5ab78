"""Video files: probing, decoding upright RGB frames, and H.264 encoding.

This is the one module that touches PyAV. It needs no torch, so the web server uses it to check
uploads (:func:`probe_video`), the SfM stage to read frames (:func:`iter_frames`) and the training
stages to write flythroughs (:func:`encode_h264`).

Containers and codecs are detected from the bytes, never from the file name. Rotation metadata
(the display matrix a phone writes for portrait video) is honoured: sizes are reported and frames
are yielded as they are meant to be displayed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ErrorCode, StageError

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
    frame_count: int = Field(ge=0, description="frames present in the file (packets counted, not the header's claim)")
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


def _open(path: Path):  # -> av.container.InputContainer
    """Open ``path`` with PyAV, turning every failure into ``INVALID_VIDEO``."""
    import av

    if not path.is_file():
        raise _invalid(path, "the file does not exist")
    if path.stat().st_size == 0:
        raise _invalid(path, "the file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise _invalid(
            path, "the file is not a readable video, or it is incomplete or corrupt", ffmpeg_error=str(exc)
        ) from exc


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


def _index_end(stream) -> int:
    """The byte offset where the stream's last indexed packet ends (0 when the container has no index)."""
    entries = stream.index_entries
    if len(entries) == 0:
        return 0
    last = entries[len(entries) - 1]
    return int(last.pos) + int(last.size) if last.pos >= 0 else 0


def _display_rotation(frame) -> int:
    """The frame's counter-clockwise display rotation in degrees, snapped to 0/90/180/270."""
    degrees = float(getattr(frame, "rotation", 0) or 0)
    return round(degrees / 90.0) % 4 * 90


def _upright(rgb: np.ndarray, rotation_deg: int) -> np.ndarray:
    """Rotate a decoded ``[H, W, 3]`` image counter-clockwise by ``rotation_deg`` for display."""
    k = (rotation_deg // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=k)) if k else rgb


def probe_video(path: Path) -> VideoInfo:
    """Check that ``path`` is a decodable video we support and describe it.

    Demuxes every packet of the video stream (cheap: no decoding) to count frames and read their
    timestamps, and decodes the first frame to prove the stream decodes and to read its rotation.

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
        container_name = _container_name(path, container.format.name)
        if not container.streams.video:
            raise _invalid(path, "the file has no video stream")
        stream = container.streams.video[0]
        decoder = stream.codec_context.codec.name
        if decoder not in _CODECS:
            raise _invalid(path, f"its video codec '{decoder}' is not supported", codec=decoder)
        codec = _CODECS[decoder]

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
