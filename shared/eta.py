"""Time-remaining estimates for stages and jobs: pure functions, no clock, no database.

The rules (``docs/eta.md`` explains and measures them):

- **Measured rate.** A worker folds every progress report (and every heartbeat) into a smoothed
  rate, progress fraction per second (:func:`update_rate`): the first rate is the progress made
  since the first report above 0 over the time since (the start-up before it is the prior's
  business); later samples move it by an exponential moving average with a time constant of at
  most :data:`RATE_TIME_CONSTANT_S`, so a stall lowers it and a burst raises it gradually.
- **Work.** Each stage's cost is a fixed part (start-up, downloads, export, flythrough) plus a part
  proportional to its *work units* (:func:`stage_work`): frames × megapixels for ``sfm``, steps ×
  megapixels for ``gs``, steps × thousands of rays for ``nerf``. A finished stage's duration is split
  by :func:`split_duration` into its fixed seconds and its *seconds per unit*, stored per stage,
  device class and preset.
- **Prior.** A stage's expected duration is fixed seconds + work × seconds per unit, both the median
  of earlier runs of the same stage on the same device class (:func:`stage_cost`; the same preset
  preferred), or the defaults :data:`DEFAULT_FIXED_S` and :data:`DEFAULT_SECONDS_PER_UNIT` when
  there is no history (:func:`prior_seconds`).
- **Running stage.** The remaining time blends the measured rate's ``(1 − p) / rate`` with the
  prior's ``prior − elapsed`` by :func:`measured_weight` (more weight to the measurement as
  progress grows, much sooner when the prior is only a default, entirely once the stage has run
  longer than its prior), clamped to ``[0, MAX_ETA_S]``. The prior counts time, not progress: a
  stage's progress fraction is not linear in time (SfM's steps, a training stage's export), and
  a run like the earlier ones ends when they did, whatever its progress says.
- **Job.** ``sfm`` runs first, the training stages run side by side: the job's remaining time is
  ``sfm`` + the longest training stage (:func:`job_remaining_s`). Finished stages count 0.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.options import OPTIONS_BY_STAGE

#: Progress samples closer together than this are not folded in alone (too short to measure).
MIN_SAMPLE_S = 1.0
#: No rate before the stage ran this long and made some progress.
MIN_RATE_ELAPSED_S = 2.0
#: Time constant of the rate's exponential moving average.
RATE_TIME_CONSTANT_S = 30.0
#: Rates below this (fraction per second: 1 % a day) count as no rate.
MIN_RATE = 1e-7
#: The largest estimate given, in seconds (a week); beyond it the figure means nothing.
MAX_ETA_S = 7 * 24 * 3600.0
#: How far a running stage's progress is extrapolated from its last report at most.
MAX_EXTRAPOLATED_PROGRESS = 0.99
#: How many recent finished stages the history median is taken over.
HISTORY_RUNS = 5

#: Where a stage's estimate comes from.
EtaBasis = Literal["done", "measured", "history", "default"]

#: Seconds per work unit with no history, by stage and device class. ``cpu``: from the garden clip's
#: ``preview`` run on a 2-core machine (SfM 63 s for 60 frames at 640×320; splats ~350 s for the stage,
#: 306 s of it training 1 200 steps at 640×320; README), TensoRF from docs/nerf.md's figures; ``cuda``: rough guesses.
#: ``docs/eta.md`` explains them; history replaces them after one job.
DEFAULT_SECONDS_PER_UNIT: dict[str, dict[str, float]] = {
    "sfm": {"cpu": 4.5, "cuda": 2.0},
    "gs": {"cpu": 1.4, "cuda": 0.05},
    "nerf": {"cpu": 0.5, "cuda": 0.02},
}
#: Fixed seconds of a stage whatever its work, by stage (the default, and the most a split assigns).
DEFAULT_FIXED_S: dict[str, float] = {"sfm": 5.0, "gs": 10.0, "nerf": 10.0}
#: Measured-rate weight ``p / (p + k)``: ``k`` with a history prior, and with a default prior.
HISTORY_PRIOR_K = 0.15
DEFAULT_PRIOR_K = 0.03


@dataclass(frozen=True)
class RateState:
    """A running stage's smoothed progress rate.

    Attributes:
        anchor_s: when the stage first reported progress above 0 (any monotonic clock, in
            seconds); None before. The start-up before it (downloads, imports) makes no progress
            and is left out of the rate: the prior accounts for it.
        anchor_progress: the progress at ``anchor_s``.
        at_s: when the last folded sample was taken.
        progress: the progress (0–1) at ``at_s``.
        rate: progress fraction per second, smoothed; None until measurable.
    """

    anchor_s: float | None = None
    anchor_progress: float = 0.0
    at_s: float = 0.0
    progress: float = 0.0
    rate: float | None = None


def update_rate(
    state: RateState, progress: float, now_s: float, *, time_constant_s: float = RATE_TIME_CONSTANT_S
) -> RateState:
    """Fold a progress sample into the smoothed rate.

    The first rate is the progress made since the anchor (the first progress above 0) over the time
    since, once that is at least :data:`MIN_RATE_ELAPSED_S`. Later samples move it by an exponential
    moving average whose time constant is ``time_constant_s``, or the time since the anchor when
    that is shorter: early on the rate follows the running average, later it forgets the past.

    Args:
        state: the state so far.
        progress: the stage's progress now (clamped to 0–1).
        now_s: the time of the sample, on the clock of ``state``.
        time_constant_s: the moving average's longest time constant.

    Returns:
        The new state. A sample less than :data:`MIN_SAMPLE_S` after the last folded one is not
        folded (the next one covers its interval); progress that goes back (a step restarted)
        restarts the measurement from there, keeping the old rate.
    """
    progress = min(max(progress, 0.0), 1.0)
    if state.anchor_s is None or progress < state.progress:
        if progress <= 0.0:
            return state
        return RateState(anchor_s=now_s, anchor_progress=progress, at_s=now_s, progress=progress, rate=state.rate)
    since_anchor = now_s - state.anchor_s
    if state.rate is None:
        if since_anchor < MIN_RATE_ELAPSED_S or progress <= state.anchor_progress:
            return state
        rate = (progress - state.anchor_progress) / since_anchor
        return RateState(state.anchor_s, state.anchor_progress, now_s, progress, rate)
    dt = now_s - state.at_s
    if dt < MIN_SAMPLE_S:
        return state
    instant = (progress - state.progress) / dt
    weight = 1.0 - math.exp(-dt / min(time_constant_s, max(since_anchor, dt)))
    rate = max(state.rate + weight * (instant - state.rate), 0.0)
    return RateState(state.anchor_s, state.anchor_progress, now_s, progress, rate)


def _megapixels(long_side_cap: int, video: Mapping[str, Any]) -> float:
    """Megapixels of a frame resized so its long side is at most ``long_side_cap`` (16:9 when unknown)."""
    width, height = video.get("width"), video.get("height")
    if not width or not height:
        width, height = 16, 9
        scale = long_side_cap / 16
    else:
        scale = min(1.0, long_side_cap / max(width, height))
    return float(width) * scale * float(height) * scale / 1e6


@functools.cache
def _default_options(stage: str) -> dict[str, Any]:
    """``stage``'s option defaults as stored (built once: :func:`stage_work` runs on every job read).

    Raises:
        ValueError: an unknown stage.
    """
    if stage not in OPTIONS_BY_STAGE:
        raise ValueError(f"unknown stage {stage!r}")
    return OPTIONS_BY_STAGE[stage]().model_dump()


def stage_work(stage: str, options: Mapping[str, Any], video: Mapping[str, Any]) -> float:
    """A stage's work in units whose cost in seconds history measures (see the module docstring).

    Args:
        stage: ``sfm``, ``gs`` or ``nerf``.
        options: the stage's resolved options (preset + overrides), as stored on the job.
        video: the probe of the input video (``width``, ``height``, ``frame_count``; any may be missing).

    Returns:
        ``sfm``: selected frames × megapixels per frame; ``gs``: steps × training megapixels;
        ``nerf``: steps × (photometric + depth rays per step) / 1000. At least a tiny positive number.

    Raises:
        ValueError: an unknown stage.
    """
    opts = {**_default_options(stage), **options}  # fields stored before they existed: the defaults
    if stage == "sfm":
        frames = float(opts["target_frames"])
        if opts.get("max_frames"):
            frames = min(frames, float(opts["max_frames"]))
        if video.get("frame_count"):
            frames = min(frames, float(video["frame_count"]))
        work = frames * _megapixels(int(opts["max_long_side"]), video)
    elif stage == "gs":
        work = float(opts["iterations"]) * _megapixels(int(opts["max_long_side"]), video)
    else:
        rays = float(opts["batch_rays"]) + float(opts["depth_batch_rays"])
        work = float(opts["iterations"]) * rays / 1000.0
    return max(work, 1e-6)


@dataclass(frozen=True)
class Timing:
    """One finished stage's measured cost: its preset, fixed seconds and seconds per work unit."""

    preset: str
    fixed_s: float
    seconds_per_unit: float


def split_duration(stage: str, seconds: float, work: float, preset: str) -> Timing:
    """Split a finished stage's duration into fixed seconds and seconds per work unit.

    The fixed part is :data:`DEFAULT_FIXED_S` of the stage, but at most half the duration, so that
    ``fixed_s + work × seconds_per_unit`` gives the duration back exactly.

    Args:
        stage: the stage.
        seconds: how long it ran (claim to result).
        work: its :func:`stage_work`.
        preset: the job's preset.
    """
    seconds = max(seconds, 0.0)
    fixed = min(DEFAULT_FIXED_S.get(stage, 0.0), seconds / 2)
    return Timing(preset=preset, fixed_s=fixed, seconds_per_unit=(seconds - fixed) / max(work, 1e-6))


def stage_cost(
    stage: str, device: str, preset: str, history: Iterable[Timing]
) -> tuple[float, float, Literal["history", "default"]]:
    """The fixed seconds and the seconds per work unit to expect for ``stage`` on ``device`` with ``preset``.

    Args:
        stage: the stage.
        device: ``cpu`` or ``cuda`` (anything else counts as ``cpu``).
        preset: the job's preset.
        history: finished runs of this stage on this device class, newest first.

    Returns:
        ``(fixed seconds, seconds per unit, basis)``: medians of the newest :data:`HISTORY_RUNS`
        runs with the same preset, else of the newest runs with any preset (``history``); else the
        defaults (``default``).
    """
    runs = [t for t in history if math.isfinite(t.seconds_per_unit) and math.isfinite(t.fixed_s)]
    pool = [t for t in runs if t.preset == preset][:HISTORY_RUNS] or runs[:HISTORY_RUNS]
    if pool:
        return (
            statistics.median(t.fixed_s for t in pool),
            statistics.median(t.seconds_per_unit for t in pool),
            "history",
        )
    defaults = DEFAULT_SECONDS_PER_UNIT.get(stage, {})
    per_unit = defaults.get(device, defaults.get("cpu", 1.0))
    return DEFAULT_FIXED_S.get(stage, 0.0), per_unit, "default"


def prior_seconds(work: float, fixed_s: float, per_unit: float) -> float:
    """A stage's expected duration: fixed seconds + work × seconds per unit, within ``[0, MAX_ETA_S]``."""
    return clamp_eta(fixed_s + work * per_unit)


def clamp_eta(seconds: float) -> float:
    """``seconds`` within ``[0, MAX_ETA_S]``; not-a-number counts as the maximum."""
    if math.isnan(seconds):
        return MAX_ETA_S
    return min(max(seconds, 0.0), MAX_ETA_S)


def measured_weight(progress: float, prior_basis: Literal["history", "default"]) -> float:
    """How much a running stage's estimate trusts its measured rate over the prior: ``p / (p + k)``.

    ``k`` is :data:`HISTORY_PRIOR_K` when the prior comes from history (trusted longer) and
    :data:`DEFAULT_PRIOR_K` when it is only a default (the measurement wins almost at once).
    """
    p = min(max(progress, 0.0), 1.0)
    k = HISTORY_PRIOR_K if prior_basis == "history" else DEFAULT_PRIOR_K
    return p / (p + k) if p > 0 else 0.0


def running_remaining_s(
    progress: float,
    rate: float | None,
    since_report_s: float,
    elapsed_s: float,
    prior_s: float,
    prior_basis: Literal["history", "default"],
) -> tuple[float, EtaBasis]:
    """Seconds left of a running stage.

    Args:
        progress: the last reported progress (0–1).
        rate: the smoothed rate reported with it (fraction per second), or None.
        since_report_s: seconds since that report; progress is extrapolated at ``rate`` over them
            (up to :data:`MAX_EXTRAPOLATED_PROGRESS`), so the estimate falls between reports.
        elapsed_s: seconds since the stage started.
        prior_s: the stage's expected duration from history or the default.
        prior_basis: where ``prior_s`` comes from.

    Returns:
        ``(seconds, basis)``: ``measured`` when a usable rate weighs in, else the prior's basis.
        The prior's time left is ``prior − elapsed``; once the stage has run longer than its prior,
        the prior is wrong by an unknown amount: the measured rate alone decides, or without one
        the prior's share of the progress left, ``(1 − p) · prior``.
    """
    p = min(max(progress, 0.0), 1.0)
    elapsed = max(elapsed_s, 0.0)
    overrun = elapsed >= prior_s
    prior_left = (1.0 - p) * prior_s if overrun else prior_s - elapsed
    if rate is None or rate < MIN_RATE:
        return clamp_eta(prior_left), prior_basis
    p = max(p, min(p + rate * max(since_report_s, 0.0), MAX_EXTRAPOLATED_PROGRESS))
    measured = (1.0 - p) / rate
    weight = 1.0 if overrun else measured_weight(p, prior_basis)
    return clamp_eta(weight * measured + (1.0 - weight) * prior_left), "measured"


def job_remaining_s(remaining_by_stage: Mapping[str, float]) -> float:
    """A job's seconds left: ``sfm``'s, plus the longest of the training stages (they run side by side)."""
    training = [seconds for name, seconds in remaining_by_stage.items() if name != "sfm"]
    return clamp_eta(remaining_by_stage.get("sfm", 0.0) + max(training, default=0.0))


def describe_eta(seconds: float | None) -> str:
    """An estimate in words: ``"about 3 min left"``, ``"less than a minute left"``, ``""`` when unknown.

    Example:
        >>> describe_eta(170)
        'about 3 min left'
        >>> describe_eta(5400)
        'about 1 h 30 min left'
    """
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds <= 0:
        return "done"
    if seconds < 45:
        return "less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest:02d} min left" if rest else f"about {hours} h left"
