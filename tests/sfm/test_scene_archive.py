"""shared.scene_archive: sfm.tar round trip and refusal of unsafe members."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from shared.errors import ErrorCode, StageError
from shared.scene_archive import pack_scene, unpack_scene


def _scene(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "images" / "frame_00000.jpg").write_bytes(b"\xff\xd8jpeg")
    (root / "scene.json").write_text('{"schema_version": 1}')
    (root / "sparse").mkdir()
    (root / "sparse" / "cameras.bin").write_bytes(b"\x00" * 16)
    return root


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w") as tar:
        scene = tarfile.TarInfo("scene.json")
        scene.size = 2
        tar.addfile(scene, io.BytesIO(b"{}"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def test_packed_scene_unpacks_to_identical_files(tmp_path: Path) -> None:
    scene = _scene(tmp_path / "scene")
    archive = pack_scene(scene, tmp_path / "sfm.tar")
    out = unpack_scene(archive, tmp_path / "copy")
    files = sorted(p.relative_to(scene) for p in scene.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert all((scene / f).read_bytes() == (out / f).read_bytes() for f in files)


def test_packing_a_directory_without_scene_json_fails(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError) as err:
        pack_scene(tmp_path / "empty", tmp_path / "sfm.tar")
    assert err.value.code == ErrorCode.INVALID_SCENE
    assert not (tmp_path / "sfm.tar").exists()


@pytest.mark.parametrize("name", ["../escape.txt", "images/../../escape.txt", "/etc/escape.txt"])
def test_unpacking_refuses_paths_outside_the_destination(tmp_path: Path, name: str) -> None:
    archive = _tar_with(tmp_path / "evil.tar", tarfile.TarInfo(name), b"gotcha")
    with pytest.raises(StageError) as err:
        unpack_scene(archive, tmp_path / "out" / "scene")
    assert err.value.code == ErrorCode.INVALID_SCENE
    assert not (tmp_path / "out" / "scene").exists()
    assert not (tmp_path / "out" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "out").iterdir()) == []  # no staging directory left behind


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_unpacking_refuses_links_and_devices(tmp_path: Path, kind: bytes) -> None:
    member = tarfile.TarInfo("images/link")
    member.type = kind
    member.linkname = "/etc/passwd"
    archive = _tar_with(tmp_path / "evil.tar", member)
    with pytest.raises(StageError) as err:
        unpack_scene(archive, tmp_path / "scene")
    assert err.value.code == ErrorCode.INVALID_SCENE
    assert not (tmp_path / "scene").exists()


def test_unpacking_a_corrupt_archive_is_an_invalid_scene(tmp_path: Path) -> None:
    archive = tmp_path / "sfm.tar"
    archive.write_bytes(b"not a tar file at all" * 100)
    with pytest.raises(StageError) as err:
        unpack_scene(archive, tmp_path / "scene")
    assert err.value.code == ErrorCode.INVALID_SCENE
