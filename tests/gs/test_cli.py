"""``vid2scene train-gs`` (gs_worker.cli)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from shared.exit_codes import ExitCode
from vid2scene.cli import main


def test_train_gs_writes_the_artifacts_and_prints_the_metrics(
    tiny_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["train-gs", str(tiny_scene), "--out", str(out), "--preset", "preview", "--iterations", "3"]
    code = main([*args, "--set", "max_long_side=32", "--set", "flythrough_seconds=0.4", "--set", "flythrough_fps=15"])
    assert code == 0
    exports = {"scene.ply", "scene.splat", "scene.spz", "scene.compressed.ply", "scene.html"}
    assert {p.name for p in out.iterdir()} == {*exports, "flythrough-gs.mp4", "report.json"}
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["iterations"] == 3 and printed["out_dir"] == str(out)
    assert printed["width"] == 32 and printed["flythrough_frames"] == 6
    assert "PSNR" in captured.err  # the progress bar shows the current PSNR


def test_train_gs_on_cuda_without_a_gpu_exits_3_with_the_stage_error_code(
    tiny_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs on every machine: torch is told there is no GPU (as on CI's CPU runners)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["train-gs", str(tiny_scene), "--out", str(tmp_path / "out"), "--device", "cuda"])
    assert code == ExitCode.FAILED == 3
    assert "CUDA_UNAVAILABLE" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_train_gs_rejects_an_unknown_option_with_exit_code_1_without_training(
    tiny_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train-gs", str(tiny_scene), "--out", str(tmp_path / "out"), "--set", "colour=blue"])
    assert code == ExitCode.ERROR == 1
    assert "INVALID_OPTIONS: invalid options" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
