"""The stage function ``train_splats`` end to end, on synthetic scenes with true cameras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gs_worker.export import read_ply
from gs_worker.pipeline import ARTIFACTS, SplatResult, train_splats
from shared.errors import Cancelled, ErrorCode, StageError
from shared.options.gs import SplatOptions
from shared.video import iter_frames, probe_video

#: The CI-size run of what ships (DefaultStrategy densifying, the compiled CPU rasterizer): 300 steps at 160×90,
#: densifying from step 50 to 250, scored on the 5 held-out frames.
CI_OPTIONS = SplatOptions.from_preset(
    "preview",
    device="cpu",
    iterations=300,
    max_long_side=160,
    sh_degree=1,
    sh_degree_interval=100,
    refine_start_iter=50,
    refine_stop_iter=250,
    refine_every=50,
    flythrough_seconds=2.0,
    flythrough_fps=10,
    flythrough_long_side=160,
)


def _quick_options(**overrides: object) -> SplatOptions:
    base: dict[str, object] = {
        "device": "cpu",
        "iterations": 4,
        "max_long_side": 32,
        "sh_degree": 0,
        "strategy": "none",
        "flythrough_seconds": 1.0,
        "flythrough_fps": 3,
        "flythrough_long_side": 32,
    }
    return SplatOptions.from_preset("preview", **{**base, **overrides})


@pytest.fixture(scope="module")
def trained(ci_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> SplatResult:
    out = tmp_path_factory.mktemp("gs-out") / "result"
    return train_splats(ci_scene, out, CI_OPTIONS)


@pytest.mark.slow
def test_training_on_the_synthetic_scene_beats_the_25_db_floor_and_the_untrained_start(trained: SplatResult) -> None:
    metrics = trained.metrics
    assert metrics.heldout_psnr >= 25.0
    assert metrics.heldout_psnr >= metrics.initial_psnr + 5.0
    assert metrics.heldout_ssim > metrics.initial_ssim + 0.2
    assert metrics.heldout_frames == 5
    assert metrics.iterations == 300


@pytest.mark.slow
def test_the_stage_writes_every_format_and_a_report_of_sizes_counts_and_clean_up(trained: SplatResult) -> None:
    out = trained.out_dir
    assert sorted(p.name for p in out.iterdir()) == sorted(ARTIFACTS)
    report = json.loads((out / "report.json").read_text())
    for key in ("heldout_psnr", "heldout_ssim", "initial_psnr", "gaussian_count", "iterations", "seconds", "device"):
        assert key in report
    assert report["device"] == "cpu" and report["backend"] == "cpu"
    assert report["heldout_psnr"] == pytest.approx(trained.metrics.heldout_psnr)
    count = report["gaussian_count"]
    assert (out / "scene.splat").stat().st_size == 32 * count
    splats = read_ply(out / "scene.ply")
    assert len(splats["means"]) == count
    assert splats["shN"].shape == (count, 3, 3)  # SH degree 1
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary directory left
    files = {f["name"]: f for f in report["files"]}
    assert set(files) == {"scene.ply", "scene.splat", "scene.spz", "scene.compressed.ply", "scene.html"}
    for name, entry in files.items():
        assert entry["bytes"] == (out / name).stat().st_size and entry["splats"] == count, name
    assert files["scene.spz"]["bytes"] < files["scene.compressed.ply"]["bytes"] < files["scene.ply"]["bytes"]
    cleanup = report["cleanup"]
    assert cleanup["kept_count"] == count == cleanup["input_count"] - sum(cleanup["removed"].values())
    assert report["heldout_psnr"] >= report["heldout_psnr_before_cleanup"] - CI_OPTIONS.cleanup_max_psnr_drop
    assert report["export_frame"]["export_from_colmap"]["scale"] == 1.0  # the synthetic world is COLMAP's


@pytest.mark.slow
def test_the_flythrough_decodes_with_the_requested_frame_count_and_frames_that_move(trained: SplatResult) -> None:
    video = trained.out_dir / "flythrough-gs.mp4"
    info = probe_video(video)
    assert info.codec == "h264"
    assert info.frame_count == 20 == trained.metrics.flythrough_frames
    assert (info.width, info.height) == (160, 90)
    frames = np.stack([rgb.astype(np.float64) for _, _, rgb in iter_frames(video)])
    assert len(frames) == 20
    assert frames.std() > 10  # a picture, not a blank screen
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert steps.min() > 0.5  # every frame differs from the previous one: the camera moves
    assert np.abs(frames[0] - frames[-1]).mean() > np.median(steps)  # the path travels, it does not dither


def test_cancelling_stops_the_stage_and_leaves_no_output_directory(tiny_scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "result"
    seen: list[str] = []

    def on_progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith("step 2/"):
            raise Cancelled()

    with pytest.raises(Cancelled):
        train_splats(tiny_scene, out, _quick_options(iterations=50), on_progress)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    assert not any(m.startswith("step 3/") for m in seen)


def test_an_invalid_scene_fails_with_invalid_scene_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty-scene").mkdir()
    with pytest.raises(StageError) as info:
        train_splats(tmp_path / "empty-scene", tmp_path / "result", _quick_options())
    assert info.value.code == ErrorCode.INVALID_SCENE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-scene"]


def test_mcmc_on_the_cpu_fails_before_writing_anything(tiny_scene: Path, tmp_path: Path) -> None:
    with pytest.raises(StageError) as info:
        train_splats(tiny_scene, tmp_path / "result", _quick_options(strategy="mcmc"))
    assert info.value.code == ErrorCode.INVALID_OPTIONS
    assert list(tmp_path.iterdir()) == []


def test_a_run_into_an_existing_directory_replaces_its_artifacts_and_keeps_other_files(
    tiny_scene: Path, tmp_path: Path
) -> None:
    out = tmp_path / "result"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "report.json").write_text("{}")
    progress: list[float] = []
    result = train_splats(tiny_scene, out, _quick_options(), lambda f, m: progress.append(f))
    assert sorted(p.name for p in out.iterdir()) == sorted([*ARTIFACTS, "notes.txt"])
    assert json.loads((out / "report.json").read_text())["iterations"] == 4
    assert result.metrics.flythrough_frames == 3
    assert progress[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in progress)
    assert list(tmp_path.iterdir()) == [out]


def test_out_of_memory_starts_over_once_at_half_resolution(
    tiny_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gs_worker.pipeline as pipeline

    real_train = pipeline.train
    widths: list[int] = []

    def train_running_out_once(params, data, options, device, **kwargs):
        widths.append(data.camera.width)
        if len(widths) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_train(params, data, options, device, **kwargs)

    monkeypatch.setattr(pipeline, "train", train_running_out_once)
    result = train_splats(tiny_scene, tmp_path / "result", _quick_options(max_long_side=64))
    assert widths == [64, 32]
    assert result.metrics.retried_at_lower_resolution
    assert result.metrics.width == 32


def test_running_out_of_memory_twice_fails_with_out_of_memory_and_leaves_nothing(
    tiny_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gs_worker.pipeline as pipeline

    def always_out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pipeline, "train", always_out_of_memory)
    with pytest.raises(StageError) as info:
        train_splats(tiny_scene, tmp_path / "result", _quick_options(max_long_side=64))
    assert info.value.code == ErrorCode.OUT_OF_MEMORY
    assert info.value.retryable
    assert "32 px" in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_the_stage_announces_and_runs_the_rasterizer_compilation_before_training_only_when_needed(
    tiny_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gs_worker.pipeline as pipeline

    warm_ups: list[int] = []
    real_warm_up = pipeline.warm_up_compiled_rasterizer

    def counted_warm_up() -> None:
        warm_ups.append(1)
        real_warm_up()

    monkeypatch.setattr(pipeline, "warm_up_compiled_rasterizer", counted_warm_up)
    monkeypatch.setattr(pipeline, "compiled_rasterizer_ready", lambda: False)  # as in a fresh process
    messages: list[str] = []
    train_splats(tiny_scene, tmp_path / "compiled", _quick_options(), lambda f, m: messages.append(m))
    compiling = [i for i, m in enumerate(messages) if "compiled CPU rasterizer" in m]
    first_step = next(i for i, m in enumerate(messages) if m.startswith("step "))
    assert warm_ups == [1] and len(compiling) == 1 and compiling[0] < first_step

    messages.clear()
    train_splats(tiny_scene, tmp_path / "torch", _quick_options(), lambda f, m: messages.append(m), backend="torch")
    assert warm_ups == [1] and not any("compiled CPU rasterizer" in m for m in messages)
    assert json.loads((tmp_path / "torch" / "report.json").read_text())["backend"] == "torch"
