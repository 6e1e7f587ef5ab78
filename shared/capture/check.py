"""The capture check: a verdict on a video in seconds, from sampled frames at reduced size, before any heavy work.

:func:`check_capture` decodes a few dozen evenly spaced frames (and the frame after each, to measure
how fast the view changes) at :data:`WORK_LONG_SIDE` pixels through :mod:`shared.video`, measures
them (:mod:`shared.capture.measure`) and judges the figures (:mod:`shared.capture.rules`). No
COLMAP, no GPU: about a second for a short phone clip on two CPU cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.capture import measure
from shared.capture.report import CaptureReport, CoverageReport, ExposureReport, MotionReport, SharpnessReport
from shared.capture.rules import DEFAULT_THRESHOLDS, Thresholds, judge
from shared.errors import ErrorCode, StageError
from shared.progress import ProgressFn, no_progress
from shared.video import VideoInfo, iter_frames, probe_video

#: Long side of the frames the check looks at, in pixels (smaller videos are used as they are).
WORK_LONG_SIDE = 480
#: Most frames sampled, evenly over the video.
MAX_SAMPLES = 64
#: A keyframe segment ends where fewer than this share of its tracks survive one step (a cut, a jump).
_KEEP_SHARE = 0.4


def sample_indices(frame_count: int, max_samples: int = MAX_SAMPLES) -> list[int]:
    """Evenly spaced frame indices over a video of ``frame_count`` frames, first and last included."""
    if frame_count <= 0:
        return []
    count = min(frame_count, max_samples)
    return sorted({round(float(x)) for x in np.linspace(0, frame_count - 1, count)})


def check_capture(
    video: Path,
    on_progress: ProgressFn = no_progress,
    *,
    info: VideoInfo | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> CaptureReport:
    """Judge how well a video will reconstruct, in seconds.

    Args:
        video: the video file.
        on_progress: ``(fraction, message)`` callback; raising from it (``Cancelled``) stops the check.
        info: the video's probe when the caller has it (probed otherwise).
        thresholds: the rules' thresholds.

    Returns:
        The figures, the verdict and the advice.

    Raises:
        StageError: ``INVALID_VIDEO`` when the file is not a decodable video we support.
    """
    started = time.monotonic()
    video = Path(video)
    info = info or probe_video(video)
    on_progress(0.0, "checking the capture")
    wanted = sample_indices(info.frame_count)
    partners = {i + 1 for i in wanted if i + 1 < info.frame_count}
    frames: dict[int, tuple[float, np.ndarray]] = {}
    to_decode = set(wanted) | partners
    for index, seconds, rgb in iter_frames(video, max_long_side=WORK_LONG_SIDE, indices=to_decode):
        frames[index] = (seconds, measure.grey(rgb))
        on_progress(0.6 * len(frames) / len(to_decode), "checking the capture: decoding samples")
    samples = [i for i in wanted if i in frames]
    if not samples:
        raise StageError(
            ErrorCode.INVALID_VIDEO,
            "The video is unusable: no frame could be decoded. Upload a complete video file.",
            details={"file": video.name},
        )
    on_progress(0.6, "checking the capture: measuring")
    times = np.array([frames[i][0] for i in samples])
    images = [frames[i][1] for i in samples]
    sample_period = info.duration_s / len(samples)

    sharp = np.array([measure.sharpness(g) for g in images])
    flat = np.array([measure.is_flat(g) for g in images])  # no detail to judge: not "blurry" (exposure says why)
    sharp_ref = float(np.percentile(sharp[~flat], 90)) if (~flat).any() else 0.0
    blurry = ((sharp < thresholds.blurry_sharpness) | (sharp < thresholds.blurry_relative * sharp_ref)) & ~flat
    exposures = [measure.exposure(g) for g in images]
    over = np.array(
        [e.clipped_high > thresholds.overexposed_clipped or e.mean > thresholds.overexposed_mean for e in exposures]
    )
    under = np.array(
        [e.clipped_low > thresholds.underexposed_clipped or e.mean < thresholds.underexposed_mean for e in exposures]
    )

    # per sample: the image motion to the next video frame (None where it cannot be measured)
    speeds = [measure.flow_magnitude(frames[i][1], frames[i + 1][1]) if i + 1 in frames else None for i in samples]
    on_progress(0.75, "checking the capture: tracking")
    motion, views = _motion(images, speeds, info.frame_count, thresholds)
    on_progress(0.9, "checking the capture: coverage")
    arc = _arc_deg(views)
    closes_loop = (
        len(images) > 1
        and arc >= thresholds.loop_arc_deg
        and measure.sees_again(images[0], images[-1], thresholds.keyframe_motion)
    )

    good_share = float((~(blurry | over | under)).mean())
    n = len(samples)
    sharpness = SharpnessReport(
        blurry_share=round(float(blurry.sum()) / n, 4),
        longest_blurry_s=round(_longest_run(blurry, times, sample_period), 3),
        median_sharpness=round(float(np.median(sharp)), 4),
    )
    coverage = CoverageReport(arc_deg=round(arc, 1), closes_loop=closes_loop)
    exposure = ExposureReport(
        overexposed_share=round(float(over.sum()) / n, 4),
        underexposed_share=round(float(under.sum()) / n, 4),
        median_brightness=round(float(np.median([e.mean for e in exposures])), 1),
    )
    usable_frames = round(info.frame_count * good_share)
    verdict, flags, advice = judge(sharpness, motion, coverage, exposure, usable_frames, thresholds)
    report = CaptureReport(
        verdict=verdict,
        flags=flags,
        advice=advice,
        duration_s=round(info.duration_s, 3),
        frame_count=info.frame_count,
        frames_sampled=len(samples),
        usable_frames=usable_frames,
        usable_duration_s=round(info.duration_s * good_share, 3),
        sharpness=sharpness,
        motion=motion,
        coverage=coverage,
        exposure=exposure,
        seconds=round(time.monotonic() - started, 3),
    )
    on_progress(1.0, report.summary())
    return report


def _longest_run(flags: np.ndarray, times: np.ndarray, sample_period: float) -> float:
    """The longest time covered by consecutive flagged samples (each counting one sample period)."""
    longest, run_start = 0.0, None
    for k, flagged in enumerate([*flags.tolist(), False]):
        if flagged and run_start is None:
            run_start = k
        elif not flagged and run_start is not None:
            longest = max(longest, float(times[k - 1] - times[run_start]) + sample_period)
            run_start = None
    return longest


@dataclass(frozen=True)
class _Segments:
    """Corners tracked from keyframe to keyframe along the sampled frames."""

    views: list[measure.TwoView]  # one two-view fit per segment that moved enough to judge
    net_motion: float  # median displacement from each keyframe to its segment's end, summed (diagonals)


def _segments(images: list[np.ndarray], keyframe_motion: float) -> _Segments:
    """Track corners from a keyframe until they moved ``keyframe_motion`` (image diagonals), fit, start again.

    A segment also ends where its tracks are lost (tracking then starts again from the previous
    frame, or from this one if that fails too), and at the last frame; a segment that moved less
    than a third of ``keyframe_motion`` is too short to judge parallax by. Displacements are measured
    from the keyframe, so hand shake does not add up the way frame-to-frame motion would.
    """
    if len(images) < 2:
        return _Segments(views=[], net_motion=0.0)
    K = measure.intrinsics(images[0])
    diagonal = measure.diagonal(images[0])
    views: list[measure.TwoView] = []
    net = 0.0
    key_points = points = measure.corners(images[0])
    fresh = True  # the keyframe's corners were just detected
    k = 1
    while k < len(images):
        moved, ok = measure.track(images[k - 1], images[k], points)
        lost = ok.sum() < max(12, _KEEP_SHARE * len(points))  # the segment ends before this frame
        if not lost:
            key_points, points = key_points[ok], moved[ok]
        displacement = float(np.median(np.linalg.norm(points - key_points, axis=1))) / diagonal if len(points) else 0.0
        if lost or displacement >= keyframe_motion or k == len(images) - 1:
            net += displacement
            view = measure.two_view(key_points, points, K, diagonal) if displacement >= keyframe_motion / 3 else None
            if view is not None:
                views.append(view)
            if lost and not fresh:  # start again from the previous frame with new corners
                key_points = points = measure.corners(images[k - 1])
                fresh = True
                continue
            key_points = points = measure.corners(images[k])
        fresh = False
        k += 1
    return _Segments(views=views, net_motion=net)


def _motion(
    images: list[np.ndarray], speeds: list[float | None], frame_count: int, t: Thresholds
) -> tuple[MotionReport, list[measure.TwoView]]:
    """The motion figures, and the two-view fits along the video (for the coverage).

    ``speeds`` holds each sample's image motion to the next video frame: None where it cannot be
    measured (a featureless frame, the last frame), infinity where the change was too large to track.
    """
    segments = _segments(images, t.keyframe_motion)
    measured = [s for s in speeds if s is not None]
    finite = [s for s in measured if np.isfinite(s)]
    turned_deg = float(np.degrees(sum(np.linalg.norm(v.rotation_vector) for v in segments.views)))
    parallax = float(np.median([v.parallax for v in segments.views])) if segments.views else None
    report = MotionReport(
        view_change_per_frame=round(float(np.mean(finite)) if finite else 0.0, 5),
        fast_share=round(sum(s > t.fast_per_frame for s in measured) / max(len(measured), 1), 4),
        turn_deg_per_frame=round(turned_deg / max(frame_count - 1, 1), 3),
        total_view_change=round(segments.net_motion, 4),
        parallax=None if parallax is None else round(parallax, 4),
        turning_in_place=parallax is not None and parallax < t.parallax_min,
    )
    return report, segments.views


def _arc_deg(views: list[measure.TwoView]) -> float:
    """The camera's rotation about its main axis, summed with sign over the fits, in degrees."""
    if not views:
        return 0.0
    rotations = np.stack([v.rotation_vector for v in views])  # [N, 3]
    axis = rotations.sum(axis=0)
    norm = float(np.linalg.norm(axis))
    if norm < 1e-9:
        return 0.0
    return float(np.degrees(abs(float((rotations @ (axis / norm)).sum()))))
