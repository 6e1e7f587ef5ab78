"""The project's own rendered scene: its ground truth must be exact, or every accuracy test lies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.manifest import SceneManifest, read_points_ply
from shared.synthetic_scene import (
    GROUND_Y,
    _intersect,
    intrinsics,
    load_capture,
    orbit_cam_from_world,
    render_capture,
    render_view,
    write_ground_truth_scene,
)
from shared.video import iter_frames, probe_video


def _project(xyz: np.ndarray, cam_from_world: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam = xyz @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    uv = cam[:, :2] / cam[:, 2:3] * K[[0, 1], [0, 1]] + K[:2, 2]
    return uv, cam[:, 2]


def test_rendered_depth_lifts_pixels_onto_the_surface_another_view_sees_at_the_same_depth() -> None:
    K = intrinsics(96, 54)
    poses = orbit_cam_from_world(10)
    _, depth_a = render_view(poses[0], K, 96, 54, supersample=1)
    _, depth_b = render_view(poses[2], K, 96, 54, supersample=1)
    v, u = np.mgrid[10:44:4, 10:86:4]
    z = depth_a[v, u].ravel()
    cam = np.stack([(u.ravel() + 0.5 - K[0, 2]) / K[0, 0] * z, (v.ravel() + 0.5 - K[1, 2]) / K[1, 1] * z, z], 1)
    R, t = poses[0][:3, :3], poses[0][:3, 3]
    xyz = (cam - t) @ R  # world_from_cam applied row-wise
    # which lifted points camera b really sees: its ray towards the point hits nothing nearer
    center_b = -poses[2][:3, :3].T @ poses[2][:3, 3]
    to_point = xyz - center_b
    dist = np.linalg.norm(to_point, axis=1)
    t_hit, _, _ = _intersect(center_b, to_point / dist[:, None])
    visible = np.abs(t_hit - dist) < 1e-6 * dist
    uv_b, z_b = _project(xyz, poses[2], K)
    ub, vb = np.floor(uv_b).astype(int).T
    inside = visible & (ub >= 1) & (ub < 95) & (vb >= 1) & (vb < 53)
    agree = np.abs(depth_b[vb[inside], ub[inside]] - z_b[inside]) < 0.05 * z_b[inside]
    assert inside.sum() > 50
    assert agree.mean() > 0.9  # the rest fall on silhouette edges, where the pixel centre sees another surface


def test_cameras_look_at_the_scene_with_minus_y_up() -> None:
    poses = orbit_cam_from_world(12)
    for pose in poses:
        center = -pose[:3, :3].T @ pose[:3, 3]
        assert center[1] < GROUND_Y  # above the ground, since +y is down
        forward = pose[2, :3]
        assert forward @ (-center) / np.linalg.norm(center) > 0.9
        assert pose[1, :3] @ np.array([0.0, -1.0, 0.0]) < -0.8  # image y (down) points to world +y (down)


def test_capture_writes_a_video_with_ground_truth_per_frame(tmp_path: Path) -> None:
    capture = render_capture(tmp_path, width=96, height=54, n_frames=9, fps=24, seed=1)
    info = probe_video(capture.video)
    assert (info.width, info.height, info.frame_count, info.codec) == (96, 54, 9, "h264")
    loaded = load_capture(tmp_path)
    np.testing.assert_allclose(loaded.cam_from_world, capture.cam_from_world)
    np.testing.assert_allclose(loaded.K, intrinsics(96, 54))
    frames = [rgb for _, _, rgb in iter_frames(capture.video)]
    expected, _ = render_view(capture.cam_from_world[4], capture.K, 96, 54, seed=1)
    assert np.abs(frames[4].astype(float) - expected).mean() < 12  # H.264 is lossy, but it is this view


def test_ground_truth_scene_has_points_on_surfaces_that_their_tracks_really_see(tmp_path: Path) -> None:
    manifest = write_ground_truth_scene(tmp_path, width=80, height=45, n_frames=17, n_points=600)
    assert SceneManifest.load(tmp_path) == manifest
    assert [f.split for f in manifest.frames].count("test") == 3  # frames 0, 8 and 16
    xyz, rgb = read_points_ply(tmp_path / manifest.points_file)
    assert len(xyz) == 600 and rgb.dtype == np.uint8
    assert np.all(xyz[:, 1] <= GROUND_Y + 1e-4)  # nothing below the ground
    tracks = np.load(tmp_path / "tracks.npz")
    K = manifest.camera.K()
    for f in range(0, 17, 4):
        seen = tracks["point_index"][tracks["frame_index"] == f]
        assert len(seen) > 20
        image = np.asarray(__import__("PIL.Image").Image.open(tmp_path / manifest.frames[f].file)).astype(float)
        uv, _ = _project(xyz[seen].astype(float), manifest.frames[f].cam_from_world_matrix(), K)
        u, v = np.floor(uv).astype(int).T
        # a tracked point's colour is the colour of the pixel it projects to (texture is view-consistent)
        assert np.median(np.abs(image[v, u] - rgb[seen]).mean(1)) < 25
