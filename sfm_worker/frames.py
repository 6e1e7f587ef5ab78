"""Frame selection: the sharpest frame of each of evenly spaced time windows, written as JPEGs.

Choosing per window (rather than the N sharpest overall) keeps the views spread over the whole
capture, which structure from motion needs; choosing the sharpest inside each window avoids motion
blur. One decoding pass: each window keeps only its best frame so far, so memory stays at one
frame whatever the video's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import ErrorCode, StageError
from shared.progress import ProgressFn, no_progress
from shared.video import VideoInfo, iter_frames

#: Side of the grey thumbnails compared to detect a static camera.
_THUMB = 32
#: The selected frames are working copies (COLMAP reads them; undistortion re-encodes them at the
#: stage's ``jpeg_quality``). On the synthetic orbit, quality 95 gave poses at least as accurate as
#: quality 100 with full-resolution chroma, and smaller files.
_WORKING_JPEG_QUALITY = 95


@dataclass(frozen=True)
class SelectedFrame:
    """One frame chosen for reconstruction."""

    video_frame: int  # 0-based index of the decoded frame in the video
    timestamp_s: float  # presentation time from the first frame
    sharpness: float  # variance of the Laplacian of the grey image
    file: str  # file name inside the frames directory, e.g. frame_00012.jpg


@dataclass(frozen=True)
class FrameSelection:
    """What :func:`select_frames` chose and what it saw."""

    frames: list[SelectedFrame]  # in time order
    frames_decoded: int
    motion: float  # largest mean grey-level difference (0-255) between selected frames' thumbnails


def frame_file_name(video_frame: int) -> str:
    """The file name of a frame: its index in the video, ``frame_00012.jpg``."""
    return f"frame_{video_frame:05d}.jpg"


def grey(rgb: np.ndarray) -> np.ndarray:
    """Luma (BT.601) of an ``[H, W, 3]`` uint8 image as ``[H, W]`` float32 in 0–255."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def sharpness(grey_image: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a grey ``[H, W]`` image (higher is sharper)."""
    g = grey_image
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def thumbnail(grey_image: np.ndarray, side: int = _THUMB) -> np.ndarray:
    """Block-average a grey ``[H, W]`` image down to about ``side`` pixels on its short side."""
    h, w = grey_image.shape
    step = max(1, min(h, w) // side)
    hh, ww = h // step * step, w // step * step
    return grey_image[:hh, :ww].reshape(hh // step, step, ww // step, step).mean(axis=(1, 3))


def target_count(info: VideoInfo, target_frames: int, max_frames: int | None) -> int:
    """How many frames to select: the preset's target, capped by ``max_frames`` and the video."""
    count = min(target_frames, info.frame_count)
    return min(count, max_frames) if max_frames is not None else count


def window_of(timestamp_s: float, frame_period_s: float, duration_s: float, windows: int) -> int:
    """The index of the evenly spaced time window of ``[0, duration)`` holding a frame's middle.

    A frame shown from ``timestamp_s`` for ``frame_period_s`` is placed by its middle, so that with
    as many windows as frames each window holds exactly one frame despite rounding.
    """
    if duration_s <= 0:
        return 0
    middle = timestamp_s + 0.5 * frame_period_s
    return min(max(int(middle / duration_s * windows), 0), windows - 1)


def select_frames(
    video: Path,
    info: VideoInfo,
    frames_dir: Path,
    *,
    count: int,
    max_long_side: int,
    min_frames: int,
    min_frame_difference: float,
    on_progress: ProgressFn = no_progress,
) -> FrameSelection:
    """Pick the sharpest frame in each of ``count`` evenly spaced time windows and write it.

    Args:
        video: the video file.
        info: its :func:`shared.video.probe_video` description.
        frames_dir: where to write ``frame_XXXXX.jpg`` (created; near-lossless JPEG working copies).
        count: number of time windows (so at most that many frames).
        max_long_side: frames are scaled so their long side is at most this.
        min_frames: fewer selected frames than this fails with ``VIDEO_TOO_SHORT``.
        min_frame_difference: if no selected frame differs from the first by more than this mean grey
            level (0–255), the camera did not move: ``VIDEO_TOO_SHORT``.
        on_progress: progress and cancellation callback.

    Returns:
        The selection, frames in time order.

    Raises:
        StageError: ``VIDEO_TOO_SHORT`` for too few usable frames or a static camera.
    """
    from PIL import Image

    frames_dir.mkdir(parents=True, exist_ok=True)
    # Frame duration is a window's width at most; windows never outnumber frames.
    windows = max(1, count)
    duration = max(info.duration_s, 1e-9)
    frame_period = duration / max(info.frame_count, 1)
    chosen: list[SelectedFrame] = []
    thumbs: list[np.ndarray] = []
    best: tuple[float, int, float, np.ndarray, np.ndarray] | None = None  # sharpness, index, time, rgb, thumb
    current_window = -1
    decoded = 0

    def flush() -> None:
        if best is None:
            return
        score, index, seconds, rgb, thumb = best
        name = frame_file_name(index)
        Image.fromarray(rgb).save(frames_dir / name, quality=_WORKING_JPEG_QUALITY)
        chosen.append(SelectedFrame(video_frame=index, timestamp_s=seconds, sharpness=score, file=name))
        thumbs.append(thumb)

    for index, seconds, rgb in iter_frames(video, max_long_side=max_long_side):
        decoded += 1
        window = window_of(seconds, frame_period, duration, windows)
        if window != current_window:
            flush()
            best, current_window = None, window
            on_progress(min(decoded / max(info.frame_count, 1), 1.0), f"reading frame {decoded} of {info.frame_count}")
        g = grey(rgb)
        score = sharpness(g)
        if best is None or score > best[0]:
            best = (score, index, seconds, rgb, thumbnail(g))
    flush()

    if len(chosen) < min_frames:
        raise StageError(
            ErrorCode.VIDEO_TOO_SHORT,
            f"The video has {decoded} decodable frames and {len(chosen)} usable ones; at least {min_frames} are needed. "
            "Film a few seconds while walking slowly around the subject.",
            details={"frames_decoded": decoded, "frames_usable": len(chosen), "min_frames": min_frames},
        )
    motion = max(float(np.abs(t - thumbs[0]).mean()) for t in thumbs)
    if motion < min_frame_difference:
        raise StageError(
            ErrorCode.VIDEO_TOO_SHORT,
            f"The camera does not move: the {len(chosen)} selected frames are nearly identical "
            f"(mean change {motion:.2f} grey levels). Walk slowly around the object while filming.",
            details={"frames_decoded": decoded, "frames_selected": len(chosen), "frame_difference": round(motion, 3)},
        )
    on_progress(1.0, f"selected {len(chosen)} of {decoded} frames")
    return FrameSelection(frames=chosen, frames_decoded=decoded, motion=motion)
