"""The capture check's thresholds and its verdict: one place for every rule.

The thresholds were tuned on the captures of ``bench/bench_capture_check.py`` (the garden clip and
its blurred, sped-up, still, turning and badly exposed variants, and the synthetic orbits); the
table and the reasoning are in ``docs/capture-check.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.capture.report import (
    CaptureFlag,
    CoverageReport,
    ExposureReport,
    MotionReport,
    SharpnessReport,
    Verdict,
)


@dataclass(frozen=True)
class Thresholds:
    """Where a figure turns from fine to a problem. Shares are of sampled frames; motion in image diagonals."""

    # sharpness (per frame): the weakest second derivative over the grey-level variance
    blurry_sharpness: float = 0.02  # below this a frame is blurry, whatever the rest of the video
    blurry_relative: float = 0.4  # below this share of the video's sharp frames (90th percentile) too
    blurry_share_poor: float = 0.5
    blurry_share_usable: float = 0.2  # above: "some_blur"
    blurry_stretch_s: float = 1.0  # a longer blurry run: "some_blur"
    # motion
    fast_per_frame: float = 0.08  # image motion above this between neighbouring video frames: too fast
    fast_share_poor: float = 0.35
    fast_share_usable: float = 0.15
    turn_deg_per_frame_poor: float = 4.0  # the camera turns faster than this per frame: too fast
    turn_deg_per_frame_usable: float = 3.2
    still_total: float = 0.015  # the net image motion over the whole video is below this: not moving
    parallax_min: float = 0.1  # the homography explains nearly every track: turning on the spot
    keyframe_motion: float = 0.08  # image motion between the two frames compared for parallax
    # coverage
    arc_usable_deg: float = 15.0  # a narrower arc: "partial_coverage", usable at best
    arc_hint_deg: float = 90.0  # a narrower arc that does not close a loop: "partial_coverage" as a hint
    loop_arc_deg: float = 250.0  # a loop closes after at least this arc, when the last frame sees the first again
    # exposure (per frame)
    overexposed_clipped: float = 0.12  # share of blown-out pixels
    overexposed_mean: float = 195.0
    underexposed_clipped: float = 0.4  # share of crushed pixels
    underexposed_mean: float = 40.0
    exposure_share_poor: float = 0.5
    exposure_share_usable: float = 0.15
    # frames
    min_usable_frames: int = 12


DEFAULT_THRESHOLDS = Thresholds()

#: The advice of each flag, in the order flags are reported (most serious first).
ADVICE: dict[CaptureFlag, str] = {
    "too_few_frames": "Film longer: the video has too few sharp, well-exposed frames.",
    "not_moving": "Move the camera: walk around the object while filming.",
    "turning_in_place": "Avoid turning in place: walk around the object instead of pivoting on the spot.",
    "too_fast": "Walk slower and turn more gently: the view changes too much between frames.",
    "blurry": "Hold the camera steady and move slowly: most frames are blurred.",
    "underexposed": "More light: film in a brighter place or turn on more lights.",
    "overexposed": "Avoid bright light: lower the exposure or keep the sun out of the frame.",
    "some_blur": "Move more smoothly: some frames are blurred.",
    "partial_coverage": "Circle the object fully: the camera covers only a narrow arc.",
}


def _level(value: float, usable_above: float, poor_above: float) -> Verdict:
    """``poor`` above ``poor_above``, ``usable`` above ``usable_above``, else ``good``."""
    return "poor" if value > poor_above else "usable" if value > usable_above else "good"


def judge(
    sharpness: SharpnessReport,
    motion: MotionReport,
    coverage: CoverageReport,
    exposure: ExposureReport,
    usable_frames: int,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> tuple[Verdict, list[CaptureFlag], list[str]]:
    """The verdict, the flags (most serious first) and their advice for a capture's figures.

    Each flag is raised at a level: ``poor`` (too few usable frames, no motion, turning in place,
    mostly blurred, far too fast, mostly badly exposed), ``usable`` (some blur, a very narrow arc,
    somewhat fast, partly badly exposed) or ``good`` (a hint that leaves the verdict as it is: an
    arc under 90° that could be widened; dropped from a ``poor`` capture, where it would only
    distract). ``too_few_frames`` is raised for a short video, not for one whose frames blur or
    exposure spoilt (those flags say so). The verdict is the worst level raised; ``good`` when none.
    """
    t = thresholds
    levels: dict[CaptureFlag, Verdict] = {}
    if motion.total_view_change < t.still_total:
        levels["not_moving"] = "poor"
    elif motion.turning_in_place:
        levels["turning_in_place"] = "poor"
    elif coverage.arc_deg < t.arc_usable_deg:
        levels["partial_coverage"] = "usable"
    elif coverage.arc_deg < t.arc_hint_deg and not coverage.closes_loop:
        levels["partial_coverage"] = "good"  # a hint: a wider arc gives a more complete scene
    fast = max(
        _level(motion.fast_share, t.fast_share_usable, t.fast_share_poor),
        _level(motion.turn_deg_per_frame, t.turn_deg_per_frame_usable, t.turn_deg_per_frame_poor),
        key=_SEVERITY.index,
    )
    blur = _level(sharpness.blurry_share, t.blurry_share_usable, t.blurry_share_poor)
    if blur == "poor":
        levels["blurry"] = "poor"
    elif blur == "usable" or sharpness.longest_blurry_s > t.blurry_stretch_s:
        levels["some_blur"] = "usable"
    graded: tuple[tuple[CaptureFlag, Verdict], ...] = (
        ("too_fast", fast),
        ("underexposed", _level(exposure.underexposed_share, t.exposure_share_usable, t.exposure_share_poor)),
        ("overexposed", _level(exposure.overexposed_share, t.exposure_share_usable, t.exposure_share_poor)),
    )
    for flag, level in graded:
        if level != "good":
            levels[flag] = level
    if usable_frames < t.min_usable_frames and not any(levels.get(f) == "poor" for f in _SPOIL_FRAMES):
        levels["too_few_frames"] = "poor"  # short, rather than spoilt by blur or exposure (those say so)
    verdict: Verdict = max(levels.values(), key=_SEVERITY.index, default="good")
    if verdict == "poor":  # hints would only distract from what must change
        levels = {flag: level for flag, level in levels.items() if level != "good"}
    flags = [flag for flag in ADVICE if flag in levels]
    return verdict, flags, [ADVICE[flag] for flag in flags]


#: Flags that spoil frames: with one of them at ``poor``, few usable frames is not "too few frames".
_SPOIL_FRAMES: tuple[CaptureFlag, ...] = ("blurry", "underexposed", "overexposed")

#: Verdicts from best to worst.
_SEVERITY: tuple[Verdict, ...] = ("good", "usable", "poor")
