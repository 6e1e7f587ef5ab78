"""The training loop (gs_worker.train): densification, the cap, divergence, cancellation, devices."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from gs_worker.data import SceneData, load_scene
from gs_worker.init import init_splats
from gs_worker.model import all_finite, create_params
from gs_worker.train import make_strategy, select_device, train
from shared.errors import Cancelled, ErrorCode, StageError
from shared.options.gs import SplatOptions

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_data(tiny_scene: Path) -> SceneData:
    return load_scene(tiny_scene, max_long_side=32)


def _params(data: SceneData, options: SplatOptions) -> torch.nn.ParameterDict:
    splats = init_splats(
        data.points_xyz, data.points_rgb, sh_degree=options.sh_degree, max_points=options.max_gaussians
    )
    return create_params(splats, CPU)


def _options(**overrides: object) -> SplatOptions:
    base: dict[str, object] = {
        "iterations": 12,
        "max_long_side": 32,
        "sh_degree": 1,
        "sh_degree_interval": 6,
        "refine_start_iter": 5,
        "refine_stop_iter": 12,
        "refine_every": 10,  # one densification round, after step 10
    }
    return SplatOptions.from_preset("preview", **{**base, **overrides})


def test_densification_with_a_low_gradient_threshold_grows_the_gaussians(tiny_data: SceneData) -> None:
    options = _options(grow_grad2d=1e-9)
    params = _params(tiny_data, options)
    start = len(params["means"])
    stats = train(params, tiny_data, options, CPU)
    assert len(params["means"]) > start
    counts = [n for _, n in stats.counts]
    assert counts[0] == start and counts[-1] == len(params["means"])
    assert all(b >= a for a, b in itertools.pairwise(counts))  # nothing was pruned at 0.005 opacity
    assert all_finite(params)
    assert stats.iterations == 12


def test_pruning_above_the_initial_opacity_removes_gaussians(tiny_data: SceneData) -> None:
    options = _options(grow_grad2d=1.0, prune_opacity=0.5)  # nothing grows; every start opacity (0.1) is too low
    params = _params(tiny_data, options)
    start = len(params["means"])
    train(params, tiny_data, options, CPU)
    assert len(params["means"]) < start // 2
    assert all_finite(params)


def test_without_a_strategy_the_count_stays_fixed_and_the_fit_improves(tiny_data: SceneData) -> None:
    options = _options(strategy="none", iterations=25)
    params = _params(tiny_data, options)
    start = len(params["means"])
    psnrs: list[float] = []
    stats = train(
        params, tiny_data, options, CPU, on_progress=lambda f, m: psnrs.append(float(m.split("PSNR ")[1][:-3]))
    )
    assert len(params["means"]) == start
    assert stats.counts == [(0, start)]
    assert psnrs[-1] > psnrs[0] + 1.0


def test_the_gaussian_count_never_exceeds_the_cap(tiny_data: SceneData) -> None:
    options = _options(grow_grad2d=1e-9, max_gaussians=1000)
    params = _params(tiny_data, options)
    stats = train(params, tiny_data, options, CPU)
    assert max(n for _, n in stats.counts) <= 1000
    assert len(params["means"]) <= 1000


def test_a_nan_in_the_gaussians_stops_training_as_diverged(tiny_data: SceneData) -> None:
    options = _options(strategy="none")
    params = _params(tiny_data, options)
    with torch.no_grad():
        params["sh0"][:] = float("nan")
    with pytest.raises(StageError) as info:
        train(params, tiny_data, options, CPU)
    assert info.value.code == ErrorCode.TRAINING_DIVERGED
    assert "step 0" in info.value.message


def test_cancelling_through_on_progress_stops_training(tiny_data: SceneData) -> None:
    options = _options(strategy="none", iterations=100)
    params = _params(tiny_data, options)
    calls: list[float] = []

    def on_progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        if len(calls) == 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        train(params, tiny_data, options, CPU, on_progress=on_progress)
    assert len(calls) == 3


def test_mcmc_on_the_cpu_is_refused_with_a_clear_error() -> None:
    with pytest.raises(StageError) as info:
        make_strategy(SplatOptions(strategy="mcmc"), CPU)
    assert info.value.code == ErrorCode.INVALID_OPTIONS
    assert "CUDA" in info.value.message and "default" in info.value.message


def test_asking_for_cuda_without_a_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs on every machine: torch is told there is no GPU (as on CI's CPU runners)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StageError) as info:
        select_device("cuda")
    assert info.value.code == ErrorCode.CUDA_UNAVAILABLE
    assert select_device("auto") == CPU
