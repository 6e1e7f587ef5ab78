"""run_sfm on a rendered orbit with known cameras: accuracy, and the scene directory's format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sfm_worker.normalize import camera_centers, umeyama
from sfm_worker.pipeline import SfmResult, run_sfm
from shared.manifest import SceneManifest, read_points_ply
from shared.options.sfm import SfmOptions
from shared.synthetic_scene import SyntheticCapture, render_capture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> SyntheticCapture:
    return render_capture(tmp_path_factory.mktemp("capture"), width=256, height=144, n_frames=36, fps=30.0, seed=0)


@pytest.fixture(scope="module")
def reconstruction(capture: SyntheticCapture, tmp_path_factory: pytest.TempPathFactory) -> SfmResult:
    options = SfmOptions.from_preset("preview", max_frames=36, max_num_features=2048, min_frames=8)
    return run_sfm(capture.video, tmp_path_factory.mktemp("sfm") / "scene", options)


def test_every_selected_frame_of_the_synthetic_orbit_registers(reconstruction: SfmResult) -> None:
    assert reconstruction.frames_selected == 36
    assert reconstruction.frames_registered == reconstruction.frames_selected
    assert reconstruction.mean_reprojection_error < 0.7


def test_synthetic_poses_match_the_truth_after_a_similarity(
    capture: SyntheticCapture, reconstruction: SfmResult
) -> None:
    manifest = SceneManifest.load(reconstruction.scene_dir)
    truth = capture.cam_from_world[[f.video_frame for f in manifest.frames]]  # [N, 4, 4]
    estimate = np.stack([f.cam_from_world_matrix() for f in manifest.frames])
    truth_from_estimate = umeyama(camera_centers(estimate), camera_centers(truth))

    centre_error = np.linalg.norm(
        truth_from_estimate.apply_points(camera_centers(estimate)) - camera_centers(truth), axis=1
    )
    assert centre_error.max() < 0.01 * capture.scene_radius

    aligned = estimate[:, :3, :3] @ truth_from_estimate.rotation.T  # cam_from_truth-world rotations
    relative = np.einsum("nij,nkj->nik", aligned, truth[:, :3, :3])
    angles = np.degrees(np.arccos(np.clip((np.trace(relative, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angles.max() < 0.5

    # COLMAP's undistortion keeps the focal length (it crops a few border pixels instead)
    assert manifest.camera.fx == pytest.approx(capture.K[0, 0], rel=0.02)
    assert manifest.camera.fy == pytest.approx(capture.K[1, 1], rel=0.02)


def test_scene_json_round_trips_and_is_normalised(reconstruction: SfmResult) -> None:
    text = (reconstruction.scene_dir / "scene.json").read_text()
    manifest = SceneManifest.model_validate_json(text)
    assert SceneManifest.model_validate_json(manifest.model_dump_json()) == manifest
    assert [f.video_frame for f in manifest.frames] == sorted(f.video_frame for f in manifest.frames)
    assert [f.split for f in manifest.frames][:9] == ["test"] + ["train"] * 7 + ["test"]
    assert all((reconstruction.scene_dir / f.file).is_file() for f in manifest.frames)
    centers = np.stack([f.camera_center() for f in manifest.frames])
    assert np.linalg.norm(centers, axis=1).max() == pytest.approx(manifest.scene_radius)
    assert 0.5 < manifest.scene_radius <= 1.0 + 1e-6
    # the synthetic cameras are level with −y up
    camera_down = np.stack([f.cam_from_world_matrix()[1, :3] for f in manifest.frames]).mean(axis=0)
    assert camera_down[1] > 0.9


def test_points_ply_reads_with_plyfile_and_matches_tracks(reconstruction: SfmResult) -> None:
    from plyfile import PlyData

    ply = PlyData.read(str(reconstruction.scene_dir / "points.ply"))
    vertex = ply["vertex"]
    assert [p.name for p in vertex.properties] == ["x", "y", "z", "red", "green", "blue"]
    assert vertex.count == reconstruction.num_points > 500
    xyz, _ = read_points_ply(reconstruction.scene_dir / "points.ply")
    np.testing.assert_allclose(np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1), xyz)
    assert np.median(np.linalg.norm(xyz, axis=1)) < 1.5  # the scene sits inside the camera orbit

    tracks = np.load(reconstruction.scene_dir / "tracks.npz")
    assert tracks["point_index"].dtype == tracks["frame_index"].dtype == np.int32
    assert tracks["point_error"].dtype == np.float32 and len(tracks["point_error"]) == vertex.count
    assert tracks["point_index"].max() < vertex.count
    assert tracks["frame_index"].max() == reconstruction.frames_registered - 1
    assert len(tracks["point_index"]) >= 2 * vertex.count  # every point is seen at least twice


def test_report_and_sparse_model_are_written(reconstruction: SfmResult) -> None:
    report = json.loads((reconstruction.scene_dir / "report.json").read_text())
    assert report["frames_registered"] == reconstruction.frames_registered
    assert report["video"]["frame_count"] == 36
    steps = {"probe", "capture_check", "frame_selection", "features", "matching", "mapping", "undistortion", "writing"}
    assert {f"seconds_{step}" for step in {*steps, "total"}} <= set(report)
    assert report["options"]["max_frames"] == 36
    assert reconstruction.capture is not None
    assert report["capture"] == reconstruction.capture.model_dump(mode="json")
    assert report["capture"]["frame_count"] == 36 and report["capture"]["verdict"] in ("good", "usable")
    assert {"cameras.bin", "images.bin", "points3D.bin"} <= {
        p.name for p in (reconstruction.scene_dir / "sparse").iterdir()
    }
    assert not (reconstruction.scene_dir / "work").exists()
    metrics = reconstruction.metrics()
    assert metrics["frames_registered"] == reconstruction.frames_registered
    assert metrics["seconds_total"] > 0


def test_cli_writes_a_scene_and_shows_a_progress_bar(
    capture: SyntheticCapture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vid2scene.cli import main

    out_dir = tmp_path / "cli-scene"
    code = main(["sfm", str(capture.video), "--out", str(out_dir), "--preset", "preview", "--max-frames", "18"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["frames_selected"] == 18
    assert summary["frames_registered"] == len(SceneManifest.load(out_dir).frames)
    assert "sfm: 100%" in captured.err
