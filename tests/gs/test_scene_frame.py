"""The exported frame: the synthetic scene, seen by SfM in an arbitrary frame, comes out upright on y = 0."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from gs_worker.export import read_ply
from gs_worker.export_all import write_exports
from gs_worker.init import init_splats
from gs_worker.scene_frame import ExportFrame, export_frame
from sfm_worker.normalize import normalizing_similarity
from shared.manifest import FrameRecord, SceneManifest, Similarity, read_points_ply
from shared.synthetic_scene import GROUND_Y
from tests.gs.test_export_formats import sh_colour

TRUE_UP = np.array([0.0, -1.0, 0.0])  # the synthetic scene's up


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.fixture(scope="module", params=[3, 11])
def tilted(
    request: pytest.FixtureRequest, tiny_scene: Path
) -> tuple[SceneManifest, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tiny scene as COLMAP might return it (turned, scaled, moved), normalised as the SfM stage does.

    Returns:
        The manifest, the points in its world, in COLMAP's frame and in the true frame, and COLMAP's rotation.
    """
    truth = SceneManifest.load(tiny_scene)
    points_true, _ = read_points_ply(tiny_scene / "points.ply")
    rotation, scale, shift = random_rotation(request.param), 3.7, np.array([5.0, -2.0, 9.0])
    points_colmap = scale * points_true @ rotation.T + shift
    cams = []
    for f in truth.frames:
        m = f.cam_from_world_matrix()
        r = m[:3, :3] @ rotation.T
        cams.append(np.concatenate([r, (scale * m[:3, 3] - r @ shift)[:, None]], axis=1))
    cam_from_colmap = np.stack(cams)
    world_from_colmap = normalizing_similarity(cam_from_colmap)
    frames = [
        FrameRecord(**{**f.model_dump(), "cam_from_world": c.tolist()})
        for f, c in zip(truth.frames, world_from_colmap.apply_cam_from_world(cam_from_colmap), strict=True)
    ]
    manifest = truth.model_copy(
        update={
            "frames": frames,
            "world_from_colmap": Similarity(
                scale=world_from_colmap.scale,
                rotation=world_from_colmap.rotation.tolist(),
                translation=world_from_colmap.translation.tolist(),
            ),
        }
    )
    return manifest, world_from_colmap.apply_points(points_colmap), points_colmap, points_true, rotation


def test_the_true_up_axis_is_the_exported_up_axis_and_the_ground_is_at_y_0(tilted) -> None:
    manifest, points_world, points_colmap, points_true, rotation = tilted
    frame = export_frame(manifest, points_world)
    c = frame.export_from_colmap
    exported = c.scale * points_colmap @ np.asarray(c.rotation).T + np.asarray(c.translation)
    np.testing.assert_allclose(exported, frame.apply_points(points_world), atol=1e-9)

    up_exported = np.asarray(c.rotation) @ (rotation @ TRUE_UP)  # a direction: no scale, no shift
    angle = np.degrees(np.arccos(np.clip(up_exported @ np.array(frame.up), -1, 1)))
    assert angle < 1.0  # the cameras alone put up 2–3° off on this orbit; the ground plane levels it
    assert frame.ground_from == "plane" and frame.level_deg > 1.0
    ground = exported[np.abs(points_true[:, 1] - GROUND_Y) < 1e-4]
    assert len(ground) > 100
    radius = manifest.scene_radius
    assert np.abs(np.median(ground[:, 1])) < 0.02 * radius  # the ground is y = 0
    assert (exported[:, 1] < 0.05 * radius).mean() > 0.95  # and everything stands on it (−y up)
    assert frame.colmap_units_per_unit == pytest.approx(1 / c.scale)


def test_every_exported_file_stands_upright_in_its_own_convention(tilted, tmp_path: Path) -> None:
    manifest, points_world, _, _, _ = tilted
    frame = export_frame(manifest, points_world)
    splats = init_splats(points_world, np.full((len(points_world), 3), 128, np.uint8), sh_degree=0)
    write_exports(tmp_path, {k: np.asarray(v, np.float32) for k, v in splats.items()}, manifest, frame)

    ply = read_ply(tmp_path / "scene.ply")
    y = ply["means"][:, 1]
    assert (y < -0.05).mean() > 0.1 and (y > 0.05).mean() < 0.03  # −y up: the objects above, nothing below y = 0
    header = (tmp_path / "scene.ply").read_bytes()[:2000].decode("ascii", "replace")
    assert "comment vid2scene export_from_colmap scale" in header

    raw = gzip.decompress((tmp_path / "scene.spz").read_bytes())
    n, bits = int.from_bytes(raw[8:12], "little"), raw[13]
    pos = np.frombuffer(raw, np.uint8, 9 * n, 16).reshape(n, 3, 3).astype(np.int64)
    fixed = pos[..., 0] | pos[..., 1] << 8 | pos[..., 2] << 16
    xyz = np.where(fixed & 0x800000, fixed - (1 << 24), fixed) / (1 << bits)
    assert (xyz[:, 1] > 0.05).mean() > 0.1 and (xyz[:, 1] < -0.05).mean() < 0.03  # SPZ is RUB: +y up
    np.testing.assert_allclose(np.sort(xyz[:, 1]), np.sort(-ply["means"][:, 1]), atol=1 / (1 << bits))


def test_turning_splats_into_the_files_frame_keeps_their_shape_and_view_dependent_colour() -> None:
    rng = np.random.default_rng(5)
    turn = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    turn *= np.linalg.det(turn)
    frame = ExportFrame(
        ground_from="plane",
        level_deg=10.0,
        ground_share=0.5,
        export_from_world=Similarity(scale=1.0, rotation=turn.tolist(), translation=[0.0, 0.4, 0.0]),
        export_from_colmap=Similarity(scale=1.0, rotation=turn.tolist(), translation=[0.0, 0.4, 0.0]),
        colmap_units_per_unit=1.0,
    )
    splats = {
        "means": rng.normal(size=(4, 3)),
        "quats": rng.normal(size=(4, 4)),
        "shN": rng.normal(size=(4, 15, 3)),
    }
    moved = frame.apply_splats(splats)
    np.testing.assert_allclose(moved["means"], splats["means"] @ turn.T + [0.0, 0.4, 0.0])

    def rotation_of(q: np.ndarray) -> np.ndarray:
        w, x, y, z = q / np.linalg.norm(q)
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )

    for before, after in zip(splats["quats"], moved["quats"], strict=True):
        np.testing.assert_allclose(rotation_of(after), turn @ rotation_of(before), atol=1e-9)
    directions = rng.normal(size=(20, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    for d in directions:  # the colour seen along turn·d in the files is the colour seen along d in the world
        np.testing.assert_allclose(sh_colour(moved["shN"], turn @ d), sh_colour(splats["shN"], d), atol=1e-9)
