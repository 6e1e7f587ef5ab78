"""``train_tensorf`` end to end on a tiny synthetic scene: quality, outputs, model file, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nerf_worker.checkpoint import load_tensorf, save_tensorf
from nerf_worker.model import TensorVM
from nerf_worker.pipeline import NerfMetrics, NerfResult, train_tensorf
from nerf_worker.render import render_image
from nerf_worker.schedule import GridSchedule
from shared.artifacts import NERF_FLYTHROUGH_FILE, NERF_MODEL_FILE, REPORT_FILE
from shared.errors import Cancelled, ErrorCode, StageError
from shared.exit_codes import ExitCode
from shared.image_metrics import psnr
from shared.manifest import PinholeCamera, SceneManifest
from tests.nerf.tiny import tiny_options

#: Held-out PSNR the tiny run must reach (an untrained field scores about 11 dB on this scene).
PSNR_FLOOR_DB = 17.0


@pytest.fixture(scope="module")
def trained(nerf_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> NerfResult:
    out = tmp_path_factory.mktemp("nerf_out") / "result"
    return train_tensorf(nerf_scene, out, tiny_options())


@pytest.mark.slow
def test_heldout_psnr_rises_well_above_its_start_and_over_the_floor(trained: NerfResult) -> None:
    report = json.loads(trained.report.read_text())
    assert report["initial_psnr"] < 14.0
    assert report["heldout_psnr"] > report["initial_psnr"] + 4.0
    assert report["heldout_psnr"] > PSNR_FLOOR_DB
    assert 0.0 < report["heldout_ssim"] <= 1.0
    assert report["iterations"] == 300 and report["device"] == "cpu"
    assert report["grid_resolution"] == trained.metrics.grid_resolution
    assert NerfMetrics.model_validate(report) == trained.metrics  # the report is the metrics model, field for field
    assert report["depth_rays"] > 0 and report["seconds"] > 0


@pytest.mark.slow
def test_outputs_are_published_together_and_the_flythrough_decodes(trained: NerfResult) -> None:
    import av

    assert sorted(p.name for p in trained.out_dir.iterdir()) == sorted(
        [NERF_FLYTHROUGH_FILE, NERF_MODEL_FILE, REPORT_FILE]
    )
    assert not list(trained.out_dir.parent.glob(".result.partial-*"))
    with av.open(str(trained.flythrough)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert len(frames) == 8  # 1 s at 8 fps
    assert (frames[0].width, frames[0].height) == (48, 26)  # 48-pixel long side, yuv420p crops odd sizes


@pytest.mark.slow
def test_model_file_loads_with_weights_only_and_reproduces_the_heldout_score(
    trained: NerfResult, nerf_scene: Path
) -> None:
    payload = torch.load(trained.model, weights_only=True)
    assert set(payload) == {"state_dict", "metadata"}
    model, meta = load_tensorf(trained.model)
    camera = PinholeCamera(**meta["camera"])
    manifest = SceneManifest.load(nerf_scene)
    from PIL import Image

    scores = []
    for frame in manifest.split("test"):
        truth = Image.open(nerf_scene / frame.file).convert("RGB").resize((camera.width, camera.height))
        out = render_image(
            model,
            camera,
            frame.cam_from_world_matrix(),
            min_near=meta["min_near"],
            step_ratio=meta["options"]["render_step_ratio"],  # the step the stage scored with
        )
        scores.append(psnr(out.rgb, np.asarray(truth) / 255.0))
    assert float(np.mean(scores)) == pytest.approx(trained.metrics.heldout_psnr, abs=1e-3)


def test_model_file_round_trips_and_renders_the_same_image(tmp_path: Path) -> None:
    torch.manual_seed(0)
    aabb = torch.tensor([[-0.5, -0.4, -0.6], [0.5, 0.4, 0.6]])
    model = TensorVM(aabb, [8, 6, 9], density_components=2, appearance_components=3, density_shift=0.0)
    schedule = GridSchedule(n_voxels_init=8 * 6 * 9, n_voxels_final=14**3, upsample_steps=(0,), alpha_mask_steps=(0,))
    schedule.step_post_backward(0, model, schedule.initialize_state())  # an upsampled, masked model
    with torch.no_grad():
        model.background_sh.normal_()
    save_tensorf(tmp_path / NERF_MODEL_FILE, model, {"note": "test"})
    loaded, meta = load_tensorf(tmp_path / NERF_MODEL_FILE)
    assert meta["note"] == "test" and meta["model"]["resolution"] == model.resolution
    camera = PinholeCamera(fx=30.0, fy=30.0, cx=16.0, cy=12.0, width=32, height=24)
    from shared.camera_path import look_at
    from shared.synthetic_scene import UP

    pose = look_at(np.array([0.4, -0.5, -1.5]), np.zeros(3), UP)
    a = render_image(model, camera, pose, min_near=0.05)
    b = render_image(loaded, camera, pose, min_near=0.05)
    assert a.opacity.max() > 0.5
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)


def test_a_directory_without_a_scene_fails_with_invalid_scene(tmp_path: Path) -> None:
    with pytest.raises(StageError) as info:
        train_tensorf(tmp_path, tmp_path / "out", tiny_options())
    assert info.value.code == ErrorCode.INVALID_SCENE and not info.value.retryable
    assert not (tmp_path / "out").exists()


def test_missing_frames_fail_with_invalid_scene(nerf_scene: Path, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    scene.mkdir()
    for name in ("scene.json", "points.ply", "tracks.npz"):
        (scene / name).write_bytes((nerf_scene / name).read_bytes())
    with pytest.raises(StageError) as info:
        train_tensorf(scene, tmp_path / "out", tiny_options())
    assert info.value.code == ErrorCode.INVALID_SCENE


def test_cancelling_stops_training_and_leaves_no_output(nerf_scene: Path, tmp_path: Path) -> None:
    seen: list[float] = []

    def on_progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        if message.startswith("step 20/"):
            raise Cancelled()

    with pytest.raises(Cancelled):
        train_tensorf(nerf_scene, tmp_path / "out", tiny_options(), on_progress)
    assert max(seen) < 0.2
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary directory


def test_a_loss_that_becomes_nan_fails_with_training_diverged(
    nerf_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TensorVM, "density_l1", lambda self: torch.tensor(float("nan")))
    with pytest.raises(StageError) as info:
        train_tensorf(nerf_scene, tmp_path / "out", tiny_options())
    assert info.value.code == ErrorCode.TRAINING_DIVERGED
    assert info.value.details["step"] == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_a_broken_scene_with_its_code_and_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vid2scene.cli import main

    code = main(["train-nerf", str(tmp_path), "--out", str(tmp_path / "out"), "--device", "cpu", "--depth-weight", "0"])
    assert code == ExitCode.ERROR == 1  # the input is not a scene: nothing was trained
    assert "INVALID_SCENE" in capsys.readouterr().err


def test_cli_trains_with_set_overrides_on_the_cpu_default_preset(
    nerf_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vid2scene.cli import main

    out = tmp_path / "out"
    tiny = ["iterations=4", "max_long_side=32", "flythrough_seconds=0.5", "flythrough_fps=4", "flythrough_long_side=32"]
    code = main(
        ["train-nerf", str(nerf_scene), "--out", str(out), "--device", "cpu", *[a for t in tiny for a in ("--set", t)]]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "'preview' preset" in captured.err  # no --preset on a CPU: preview, and it says so
    printed = json.loads(captured.out)
    assert printed["iterations"] == 4 and printed["out_dir"] == str(out)
    assert {p.name for p in out.iterdir()} == {"flythrough-nerf.mp4", "tensorf.pt", "report.json"}


def test_cli_refuses_a_malformed_set_option_without_training(
    nerf_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vid2scene.cli import main

    code = main(["train-nerf", str(nerf_scene), "--out", str(tmp_path / "out"), "--set", "iterations"])
    assert code == ExitCode.ERROR == 1
    assert "NAME=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
