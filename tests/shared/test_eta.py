"""The ETA rules of shared/eta.py: rates, work scaling, history and defaults, smoothing, clamping."""

from __future__ import annotations

import math

import pytest

from shared.eta import (
    DEFAULT_FIXED_S,
    DEFAULT_SECONDS_PER_UNIT,
    HISTORY_PRIOR_K,
    MAX_ETA_S,
    MAX_EXTRAPOLATED_PROGRESS,
    RateState,
    Timing,
    clamp_eta,
    describe_eta,
    job_remaining_s,
    measured_weight,
    prior_seconds,
    running_remaining_s,
    split_duration,
    stage_cost,
    stage_work,
    update_rate,
)
from shared.options import SfmOptions, SplatOptions, TensorfOptions

VIDEO = {"width": 1920, "height": 1080, "frame_count": 900}


# --- rates ------------------------------------------------------------------------------------------
def _anchored(at_s: float = 10.0, progress: float = 0.1) -> RateState:
    """A stage whose first progress (``progress``) came at ``at_s``."""
    return update_rate(RateState(), progress, at_s)


def test_the_start_up_before_the_first_progress_is_left_out() -> None:
    state = _anchored(10.0, 0.1)  # 10 s of downloads, then 10 %
    assert state.rate is None and state.anchor_s == 10.0
    state = update_rate(state, 0.3, 20.0)
    assert state.rate == pytest.approx(0.02)  # (0.3 − 0.1) / 10 s, not 0.3 / 20 s


def test_no_rate_before_progress_or_before_the_minimum_elapsed_time() -> None:
    state = RateState()
    assert update_rate(state, 0.0, 30.0) is state  # no progress yet
    anchored = _anchored(10.0, 0.1)
    assert update_rate(anchored, 0.5, 11.0).rate is None  # too early to tell
    assert update_rate(anchored, 0.1, 20.0).rate is None  # no progress since the anchor


def test_a_steady_stage_keeps_its_rate() -> None:
    state = _anchored(0.0, 0.01)
    for t in range(5, 90, 5):
        state = update_rate(state, 0.01 + t / 100, float(t))
    assert state.rate == pytest.approx(0.01)


def test_smoothing_moves_part_of_the_way_by_the_time_constant() -> None:
    state = update_rate(_anchored(0.0, 0.1), 0.5, 40.0)  # 0.01 per second over 40 s
    stalled = update_rate(state, 0.5, 70.0, time_constant_s=30.0)  # a 30 s stall: instant rate 0
    assert stalled.rate == pytest.approx(0.01 * math.exp(-1.0))
    burst = update_rate(state, 1.0, 70.0, time_constant_s=30.0)  # instant 1/60 per second
    assert burst.rate == pytest.approx(0.01 + (1 / 60 - 0.01) * (1 - math.exp(-1.0)))


def test_early_on_the_rate_follows_the_running_average() -> None:
    state = update_rate(_anchored(0.0, 0.1), 0.2, 2.0)  # 0.05 per second over 2 s
    faster = update_rate(state, 0.6, 6.0)  # then 0.1 per second for 4 s: the time constant is 6 s, not 30
    assert faster.rate == pytest.approx(0.05 + 0.05 * (1 - math.exp(-4.0 / 6.0)))


def test_samples_closer_than_a_second_are_not_folded_alone() -> None:
    state = update_rate(_anchored(0.0, 0.1), 0.2, 10.0)
    assert update_rate(state, 0.5, 10.5) is state
    later = update_rate(state, 0.3, 20.0)  # covers the skipped interval
    assert later.rate == pytest.approx(0.01)


def test_progress_going_back_keeps_the_rate_and_restarts_from_there() -> None:
    state = update_rate(_anchored(0.0, 0.1), 0.5, 10.0)
    back = update_rate(state, 0.2, 12.0)
    assert back.rate == state.rate
    assert (back.anchor_s, back.progress, back.at_s) == (12.0, 0.2, 12.0)


def test_progress_is_clamped_and_the_rate_never_negative() -> None:
    state = update_rate(_anchored(0.0, 0.5), 2.0, 10.0)
    assert state.progress == 1.0 and state.rate == pytest.approx(0.05)
    assert update_rate(state, 1.0, 20.0).rate >= 0  # type: ignore[operator]


# --- work and scaling -------------------------------------------------------------------------------
def test_sfm_work_scales_with_frames_and_pixels() -> None:
    preview = SfmOptions.from_preset("preview").model_dump()
    standard = SfmOptions.from_preset("standard").model_dump()
    # preview: 60 frames at 640 px; standard: 150 frames at 1280 px: 2.5 x the frames, 4 x the pixels
    assert stage_work("sfm", standard, VIDEO) / stage_work("sfm", preview, VIDEO) == pytest.approx(10.0)
    short = {**VIDEO, "frame_count": 30}  # fewer frames than the target: all of them
    assert stage_work("sfm", preview, short) == pytest.approx(stage_work("sfm", preview, VIDEO) / 2)
    capped = {**preview, "max_frames": 15}
    assert stage_work("sfm", capped, VIDEO) == pytest.approx(stage_work("sfm", preview, VIDEO) / 4)


def test_small_videos_are_not_scaled_up() -> None:
    small = {"width": 320, "height": 240, "frame_count": 100}
    options = SfmOptions.from_preset("standard").model_dump()
    assert stage_work("sfm", options, small) == pytest.approx(100 * 320 * 240 / 1e6)


def test_training_work_scales_with_steps() -> None:
    gs = SplatOptions.from_preset("preview").model_dump()
    assert stage_work("gs", {**gs, "iterations": 2400}, VIDEO) == pytest.approx(2 * stage_work("gs", gs, VIDEO))
    nerf = TensorfOptions.from_preset("preview").model_dump()
    assert stage_work("nerf", nerf, VIDEO) == pytest.approx(600 * (1024 + 256) / 1000)


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        stage_work("mesh", {}, VIDEO)


# --- history and defaults ---------------------------------------------------------------------------
def test_no_history_uses_the_documented_defaults() -> None:
    fixed, per_unit, basis = stage_cost("gs", "cuda", "standard", [])
    assert (fixed, per_unit, basis) == (DEFAULT_FIXED_S["gs"], DEFAULT_SECONDS_PER_UNIT["gs"]["cuda"], "default")
    assert stage_cost("gs", "tpu", "standard", [])[1] == DEFAULT_SECONDS_PER_UNIT["gs"]["cpu"]


def test_a_duration_splits_into_fixed_and_per_unit_parts_that_add_back_up() -> None:
    timing = split_duration("gs", 70.0, 30.0, "preview")
    assert timing.fixed_s == DEFAULT_FIXED_S["gs"]
    assert prior_seconds(30.0, timing.fixed_s, timing.seconds_per_unit) == pytest.approx(70.0)
    short = split_duration("gs", 4.0, 30.0, "preview")  # shorter than the fixed part: half of it is fixed
    assert short.fixed_s == 2.0
    assert prior_seconds(30.0, short.fixed_s, short.seconds_per_unit) == pytest.approx(4.0)


def test_history_scales_the_per_unit_part_with_the_work() -> None:
    timing = split_duration("gs", 110.0, 100.0, "preview")  # 10 s fixed + 1 s per unit
    fixed, per_unit, basis = stage_cost("gs", "cpu", "preview", [timing])
    assert basis == "history"
    assert prior_seconds(200.0, fixed, per_unit) == pytest.approx(210.0)  # twice the steps


def test_history_of_the_same_preset_wins_and_is_a_median() -> None:
    history = [Timing("preview", 1.0, 2.0), Timing("standard", 9.0, 9.0), Timing("preview", 3.0, 4.0)]
    history.append(Timing("preview", 5.0, 100.0))
    assert stage_cost("gs", "cpu", "preview", history) == (3.0, 4.0, "history")


def test_history_of_another_preset_is_used_when_none_matches() -> None:
    history = [Timing("standard", 2.0, 3.0), Timing("high", 4.0, 5.0)]
    assert stage_cost("gs", "cpu", "preview", history) == (3.0, 4.0, "history")


def test_only_the_newest_runs_count() -> None:
    history = [Timing("preview", 0.0, 1.0)] * 5 + [Timing("preview", 0.0, 50.0)] * 10
    assert stage_cost("sfm", "cpu", "preview", history)[1] == 1.0


def test_prior_is_fixed_plus_work_times_seconds_per_unit() -> None:
    assert prior_seconds(300.0, 5.0, 0.5) == 155.0


# --- running stages, clamping, jobs -----------------------------------------------------------------
def test_without_a_rate_the_prior_counts_time_not_progress() -> None:
    # 50 s into a stage expected to take 200 s: 150 s left, whatever the (non-linear) progress says
    assert running_remaining_s(0.6, None, 0.0, 50.0, 200.0, "history") == (150.0, "history")
    assert running_remaining_s(0.25, 0.0, 0.0, 50.0, 200.0, "default") == (150.0, "default")
    # overrun: the prior was wrong; its share of the progress left is all there is
    assert running_remaining_s(0.75, None, 0.0, 300.0, 200.0, "history") == (50.0, "history")


def test_measured_rate_wins_as_progress_grows() -> None:
    assert measured_weight(0.0, "history") == 0.0
    assert measured_weight(0.5, "history") > measured_weight(0.1, "history")
    assert measured_weight(0.1, "default") > measured_weight(0.1, "history")
    # measured: (1 − 0.5) / 0.01 = 50 s; prior: 200 − 80 = 120 s
    seconds, basis = running_remaining_s(0.5, 0.01, 0.0, 80.0, 200.0, "history")
    weight = 0.5 / (0.5 + HISTORY_PRIOR_K)
    assert basis == "measured"
    assert seconds == pytest.approx(weight * 50 + (1 - weight) * 120)


def test_an_overrun_stage_trusts_its_measured_rate_alone() -> None:
    assert running_remaining_s(0.5, 0.01, 0.0, 250.0, 200.0, "history") == (pytest.approx(50.0), "measured")


def test_estimate_falls_between_reports() -> None:
    first, _ = running_remaining_s(0.5, 0.01, 0.0, 20.0, 100.0, "history")
    later, _ = running_remaining_s(0.5, 0.01, 10.0, 30.0, 100.0, "history")
    assert later < first
    # extrapolation stops short of done: a stalled worker never shows 0
    stalled, _ = running_remaining_s(0.5, 0.01, 10_000.0, 10_020.0, 100.0, "history")
    assert stalled == pytest.approx((1 - MAX_EXTRAPOLATED_PROGRESS) / 0.01)
    assert stalled > 0


def test_estimates_are_clamped() -> None:
    assert clamp_eta(-5.0) == 0.0
    assert clamp_eta(1e12) == MAX_ETA_S
    assert clamp_eta(float("nan")) == MAX_ETA_S
    assert running_remaining_s(0.001, 1e-6, 0.0, 1.0, 1e12, "default")[0] == MAX_ETA_S
    assert running_remaining_s(0.5, None, 0.0, 0.0, 1e12, "default")[0] == MAX_ETA_S


def test_finished_stages_count_zero_and_training_stages_overlap() -> None:
    assert job_remaining_s({"sfm": 0.0, "gs": 0.0, "nerf": 0.0}) == 0.0
    assert job_remaining_s({"sfm": 30.0, "gs": 100.0, "nerf": 60.0}) == 130.0
    assert job_remaining_s({"sfm": 30.0}) == 30.0


def test_describe_eta_in_words() -> None:
    assert describe_eta(170) == "about 3 min left"
    assert describe_eta(20) == "less than a minute left"
    assert describe_eta(0) == "done"
    assert describe_eta(7200) == "about 2 h left"
    assert describe_eta(None) == ""
