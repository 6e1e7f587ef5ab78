"""The training stages' one scene loader and its rules (shared.scene_loader): what it reads, and every
way a scene directory is refused as ``INVALID_SCENE``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.errors import ErrorCode, StageError
from shared.manifest import SCENE_FILE, SceneManifest, read_points_ply, write_points_ply
from shared.scene_loader import load_scene
from shared.synthetic_scene import write_ground_truth_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64×36, 16-frame synthetic scene (14 training frames, 2 held out) with 300 points."""
    scene_dir = tmp_path_factory.mktemp("loader") / "scene"
    write_ground_truth_scene(scene_dir, width=64, height=36, n_frames=16, seed=1, n_points=300)
    return scene_dir


@pytest.fixture
def copy(scene: Path, tmp_path: Path) -> Path:
    """A copy of :func:`scene` for a test to break."""
    return Path(shutil.copytree(scene, tmp_path / "scene"))


def refusal(scene_dir: Path) -> str:
    """The message of the ``INVALID_SCENE`` error that loading ``scene_dir`` raises."""
    with pytest.raises(StageError) as info:
        load_scene(scene_dir, 64)
    assert info.value.code == ErrorCode.INVALID_SCENE
    assert not info.value.retryable
    return info.value.message


def rewrite_manifest(scene_dir: Path, **changes: object) -> None:
    manifest = SceneManifest.load(scene_dir)
    manifest.model_copy(update=changes).save(scene_dir)


def test_frames_are_resized_to_the_long_side_with_the_camera_scaled_to_match(scene: Path) -> None:
    data = load_scene(scene, max_long_side=32)
    manifest = SceneManifest.load(scene)
    assert (data.camera.width, data.camera.height) == (32, 18)
    assert data.camera.fx == pytest.approx(manifest.camera.fx / 2)
    assert data.camera.cx == pytest.approx(manifest.camera.cx / 2)
    image = data.images[data.train_frames[0].file]
    assert image.shape == (18, 32, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.std() > 0.01
    assert [f.split for f in data.test_frames] == ["test"] * 2
    assert len(data.train_frames) == 14
    assert set(data.images) == {f.file for f in manifest.frames}
    assert data.stack(data.train_frames).shape == (14, 18, 32, 3)
    assert data.poses(data.test_frames).shape == (2, 4, 4)


def test_images_are_never_scaled_up_and_keep_their_pixels_at_full_size(scene: Path) -> None:
    data = load_scene(scene, max_long_side=1000)
    assert (data.camera.width, data.camera.height) == (64, 36)
    first = data.train_frames[0].file
    with Image.open(scene / first) as img:
        expected = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    np.testing.assert_array_equal(data.images[first], expected)


def test_the_points_are_read_in_the_files_order_with_their_colours(scene: Path) -> None:
    data = load_scene(scene, 64)
    xyz, rgb = read_points_ply(scene / "points.ply")
    np.testing.assert_array_equal(data.points_xyz, xyz)
    np.testing.assert_array_equal(data.points_rgb, rgb)


def test_a_directory_without_a_manifest_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path)
    assert SCENE_FILE in message and "not a scene directory" in message


def test_a_manifest_that_is_not_json_is_refused(copy: Path) -> None:
    (copy / SCENE_FILE).write_text("{not json")
    assert f"{SCENE_FILE} is not a valid scene manifest" in refusal(copy)


def test_a_manifest_missing_its_camera_is_refused(copy: Path) -> None:
    document = json.loads((copy / SCENE_FILE).read_text())
    del document["camera"]
    (copy / SCENE_FILE).write_text(json.dumps(document))
    message = refusal(copy)
    assert "not a valid scene manifest" in message and "camera" in message


def test_a_scene_with_one_training_frame_is_refused(copy: Path) -> None:
    manifest = SceneManifest.load(copy)
    train = manifest.split("train")
    rewrite_manifest(copy, frames=[*train[:1], *manifest.split("test")])
    assert "1 training frames; at least 2 are needed" in refusal(copy)


def test_a_scene_without_held_out_frames_is_refused(copy: Path) -> None:
    rewrite_manifest(copy, frames=SceneManifest.load(copy).split("train"))
    assert "no held-out (test) frames" in refusal(copy)


def test_a_missing_image_is_refused_by_name(copy: Path) -> None:
    missing = SceneManifest.load(copy).frames[3].file
    (copy / missing).unlink()
    message = refusal(copy)
    assert Path(missing).name in message and "cannot be read" in message


def test_a_file_that_is_not_an_image_is_refused_by_name(copy: Path) -> None:
    broken = SceneManifest.load(copy).split("test")[0].file
    (copy / broken).write_bytes(b"this is not a PNG")
    message = refusal(copy)
    assert Path(broken).name in message and "cannot be read" in message


def test_an_image_of_another_size_than_the_camera_is_refused(copy: Path) -> None:
    frame = SceneManifest.load(copy).frames[5].file
    with Image.open(copy / frame) as img:
        img.resize((32, 18)).save(copy / frame)
    message = refusal(copy)
    assert Path(frame).name in message and "32×18" in message and "64×36" in message


def test_an_unreadable_points_file_is_refused(copy: Path) -> None:
    (copy / "points.ply").write_bytes(b"not a ply")
    assert "sparse points points.ply cannot be read" in refusal(copy)


def test_a_missing_points_file_is_refused(copy: Path) -> None:
    (copy / "points.ply").unlink()
    assert "sparse points points.ply cannot be read" in refusal(copy)


def test_a_scene_without_sparse_points_is_refused(copy: Path) -> None:
    write_points_ply(copy / "points.ply", np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8))
    assert "0 sparse points; training needs at least 4" in refusal(copy)


def test_three_points_are_too_few_and_four_are_enough(copy: Path) -> None:
    xyz, rgb = read_points_ply(copy / "points.ply")
    write_points_ply(copy / "points.ply", xyz[:3], rgb[:3])
    assert "3 sparse points" in refusal(copy)
    write_points_ply(copy / "points.ply", xyz[:4], rgb[:4])
    assert len(load_scene(copy, 64).points_xyz) == 4


def test_a_point_that_is_not_finite_is_refused(copy: Path) -> None:
    xyz, rgb = read_points_ply(copy / "points.ply")
    xyz[7, 1] = np.nan
    xyz[9, 0] = np.inf
    write_points_ply(copy / "points.ply", xyz, rgb)
    assert "hold 2 positions that are not finite" in refusal(copy)
