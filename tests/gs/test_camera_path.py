"""The flythrough camera path (shared.camera_path)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.camera_path import (
    camera_centers,
    choose_kind,
    flythrough_path,
    flythrough_plan,
    look_at,
    scene_flythrough_path,
    swept_angle_deg,
)
from shared.manifest import FrameRecord, PinholeCamera, SceneManifest, Similarity, assign_splits
from shared.options import SplatOptions, TensorfOptions

UP = np.array([0.0, -1.0, 0.0])  # the normalised world's up


def _orbit_capture(sweep_deg: float, n: int = 60, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """Cameras on a circle of radius 1 around the origin, 0.3 above it, looking at the origin."""
    rng = np.random.default_rng(seed)
    angles = np.radians(np.linspace(0.0, sweep_deg, n))
    poses = []
    for a in angles:
        position = np.array([np.cos(a), -0.3, np.sin(a)]) + jitter * rng.standard_normal(3)
        poses.append(look_at(position, jitter * rng.standard_normal(3), UP))
    return np.stack(poses)


def _forward_capture(n: int = 40) -> np.ndarray:
    """A sideways walk past a scene 2 units ahead, cameras all facing +z."""
    xs = np.linspace(-0.5, 0.5, n)
    return np.stack([look_at(np.array([x, 0.0, 0.0]), np.array([x, 0.0, 2.0]), UP) for x in xs])


def _forward_axes(poses: np.ndarray) -> np.ndarray:
    return poses[:, 2, :3]


def _assert_smooth(path: np.ndarray, scale: float, speed: float = 1.0) -> None:
    """Second differences of positions and rotations stay small: no jumps or kinks.

    ``speed``: how many times faster than one turn in ``len(path)`` frames the path may move (the bounds grow with
    its square).
    """
    n = len(path)
    pos = camera_centers(path)
    step = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    second = np.linalg.norm(np.diff(pos, n=2, axis=0), axis=1)
    assert second.max() <= 100.0 * scale * speed**2 / n**2 + 1e-9
    assert step.max() <= 3.0 * max(step.mean(), 1e-12) + 1e-9  # roughly constant speed
    rot_second = np.linalg.norm(np.diff(path[:, :3, :3], n=2, axis=0), axis=(1, 2))
    assert rot_second.max() <= 100.0 * speed**2 / n**2 + 1e-9


def _assert_rotations_orthonormal(path: np.ndarray) -> None:
    rot = path[:, :3, :3]
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)


def _min_distance_to_training(path: np.ndarray, train: np.ndarray) -> float:
    d_pos = np.linalg.norm(camera_centers(path)[:, None] - camera_centers(train)[None], axis=2)
    d_rot = np.linalg.norm(path[:, None, :3, :3] - train[None, :, :3, :3], axis=(2, 3))
    return float((d_pos + d_rot).min())


def test_a_full_circle_capture_gets_a_closed_orbit_that_looks_at_the_centre() -> None:
    train = _orbit_capture(350.0, jitter=0.01)
    assert choose_kind(train) == "orbit"
    path = flythrough_path(train, 120)
    assert path.shape == (120, 4, 4)
    _assert_rotations_orthonormal(path)
    _assert_smooth(np.concatenate([path, path[:2]]), scale=1.0)  # smooth across the loop's seam too
    centers = camera_centers(path)
    to_centre = -centers / np.linalg.norm(centers, axis=1, keepdims=True)
    assert np.all(np.einsum("ni,ni->n", _forward_axes(path), to_centre) > np.cos(np.radians(10)))
    assert swept_angle_deg(path) == pytest.approx(360.0 * 119 / 120, abs=1.0)


def test_a_partial_arc_gets_a_spline_that_stays_near_the_captured_views() -> None:
    train = _orbit_capture(120.0, jitter=0.01)
    assert choose_kind(train) == "spline"
    path = flythrough_path(train, 90)
    _assert_rotations_orthonormal(path)
    _assert_smooth(path, scale=1.0)
    centers = camera_centers(path)
    assert np.all(np.linalg.norm(centers[:, None] - camera_centers(train)[None], axis=2).min(axis=1) < 0.2)
    to_centre = -centers / np.linalg.norm(centers, axis=1, keepdims=True)
    assert np.all(np.einsum("ni,ni->n", _forward_axes(path), to_centre) > np.cos(np.radians(15)))
    # it travels the captured arc from its start to its end
    assert np.linalg.norm(centers[0] - camera_centers(train)[0]) < 0.15
    assert np.linalg.norm(centers[-1] - camera_centers(train)[-1]) < 0.15


def test_a_forward_facing_capture_gets_a_spline_that_keeps_facing_the_scene() -> None:
    train = _forward_capture()
    path = flythrough_path(train, 50)
    _assert_rotations_orthonormal(path)
    _assert_smooth(path, scale=1.0)
    assert np.all(_forward_axes(path) @ np.array([0.0, 0.0, 1.0]) > 0.99)


@pytest.mark.parametrize("capture", ["orbit", "arc", "forward"])
def test_the_path_is_never_a_replay_of_training_poses(capture: str) -> None:
    train = {"orbit": _orbit_capture(360.0), "arc": _orbit_capture(90.0), "forward": _forward_capture()}[capture]
    path = flythrough_path(train, 200)
    assert _min_distance_to_training(path, train) > 0.02


def test_the_path_has_the_requested_number_of_frames_and_accepts_3x4_poses() -> None:
    train = _orbit_capture(200.0)[:, :3, :]
    for n in (2, 17, 240):
        assert flythrough_path(train, n).shape == (n, 4, 4)


def test_the_path_kind_can_be_forced() -> None:
    train = _orbit_capture(100.0)
    orbit = flythrough_path(train, 60, kind="orbit")
    radii = np.linalg.norm(camera_centers(orbit)[:, [0, 2]], axis=1)
    assert radii.max() - radii.min() < 0.05  # on a circle around the centre ...
    assert 80.0 < swept_angle_deg(orbit) < 100.0  # ... over the captured arc only
    assert swept_angle_deg(flythrough_path(train, 60, kind="spline")) < 120.0


def test_too_few_poses_or_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 training poses"):
        flythrough_path(_orbit_capture(90.0)[:1], 10)
    with pytest.raises(ValueError, match="at least 2 frames"):
        flythrough_path(_orbit_capture(90.0), 1)


def test_a_scenes_path_follows_its_frames_in_capture_order_whatever_the_manifest_order() -> None:
    poses = _orbit_capture(120.0, n=24)
    frames = [
        FrameRecord(
            file=f"images/{i:03d}.png",
            video_frame=i,
            timestamp_s=i / 10,
            cam_from_world=poses[i, :3].tolist(),
            split=split,
        )
        for i, split in enumerate(assign_splits(len(poses)))
    ]
    manifest = SceneManifest(
        camera=PinholeCamera(fx=100, fy=100, cx=32, cy=24, width=64, height=48),
        frames=frames[::-1],  # listed newest first
        world_from_colmap=Similarity(scale=1, rotation=np.eye(3).tolist(), translation=[0, 0, 0]),
        scene_radius=1.0,
    )
    path = scene_flythrough_path(manifest, 30)
    np.testing.assert_allclose(path, flythrough_path(poses, 30), atol=1e-9)

    # The plan both stages render: seconds × fps poses (at least 2), the camera scaled down, never up.
    options = SplatOptions(flythrough_seconds=2.0, flythrough_fps=12, flythrough_long_side=32, flythrough_path="spline")
    poses_planned, camera = flythrough_plan(manifest, options)
    np.testing.assert_allclose(poses_planned, scene_flythrough_path(manifest, 24, kind="spline"), atol=1e-12)
    assert (camera.width, camera.height, camera.fx, camera.cx) == (32, 24, 50.0, 16.0)
    brief = TensorfOptions(flythrough_seconds=0.01, flythrough_fps=8, flythrough_long_side=4096)
    few, full = flythrough_plan(manifest, brief)
    assert len(few) == 2 and (full.width, full.height) == (64, 48)


def _angles_deg(poses: np.ndarray) -> np.ndarray:
    centers = camera_centers(poses)
    return np.degrees(np.unwrap(np.arctan2(centers[:, 2], centers[:, 0])))


def test_an_orbit_of_an_open_arc_stays_inside_the_captured_arc_and_swings_back_smoothly() -> None:
    train = _orbit_capture(290.0, jitter=0.01)
    assert choose_kind(train) == "orbit"
    path = flythrough_path(train, 120)
    _assert_rotations_orthonormal(path)
    # smooth, and back to its start without a jump (it travels the arc twice, eased: ~2.3× a full turn's speed)
    _assert_smooth(np.concatenate([path, path[:2]]), scale=1.0, speed=2.5)
    angles = _angles_deg(path) % 360.0
    captured = _angles_deg(train)
    assert angles.min() >= captured.min() + 0.04 * 290.0 and angles.max() <= captured.max() - 0.04 * 290.0
    assert angles.max() - angles.min() >= 0.85 * 290.0  # it still shows (nearly) the whole captured arc
    centers = camera_centers(path)
    to_centre = -centers / np.linalg.norm(centers, axis=1, keepdims=True)
    assert np.all(np.einsum("ni,ni->n", _forward_axes(path), to_centre) > np.cos(np.radians(10)))
