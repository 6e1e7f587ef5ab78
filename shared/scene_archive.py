"""Pack a scene directory into ``sfm.tar`` and unpack it safely.

Workers move scenes between machines as one uncompressed tar (the frames are JPEGs already).
Unpacking trusts nothing: only regular files and directories with relative paths inside the
destination are accepted, within size and member-count limits, and the result appears atomically
(extracted into a temporary directory beside ``dest``, then renamed).
"""

from __future__ import annotations

import shutil
import tarfile
import uuid
from pathlib import Path, PurePosixPath

from shared.errors import ErrorCode, StageError
from shared.manifest import SCENE_FILE

#: Limits on what :func:`unpack_scene` accepts.
MAX_TOTAL_BYTES = 20 * 1024**3
MAX_MEMBER_BYTES = 4 * 1024**3
MAX_MEMBERS = 100_000


def pack_scene(scene_dir: Path, tar_path: Path) -> Path:
    """Write every file under ``scene_dir`` into an uncompressed tar, paths relative to ``scene_dir``.

    Args:
        scene_dir: a scene directory (must hold ``scene.json``).
        tar_path: the archive to write (written beside, then renamed into place).

    Returns:
        ``tar_path``.

    Raises:
        StageError: ``INVALID_SCENE`` when ``scene_dir`` has no ``scene.json`` or holds a link.
    """
    scene_dir, tar_path = Path(scene_dir), Path(tar_path)
    if not (scene_dir / SCENE_FILE).is_file():
        raise StageError(ErrorCode.INVALID_SCENE, f"{scene_dir} is not a scene directory: it has no {SCENE_FILE}.")
    partial = tar_path.with_name(f".{tar_path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(scene_dir.rglob("*")):
                if path.is_symlink():
                    raise StageError(ErrorCode.INVALID_SCENE, f"{path} is a link; scenes hold regular files only.")
                if path.is_file():
                    tar.add(path, arcname=path.relative_to(scene_dir).as_posix(), recursive=False)
        partial.replace(tar_path)
    finally:
        partial.unlink(missing_ok=True)
    return tar_path


def _check_member(member: tarfile.TarInfo) -> None:
    """Refuse anything but a regular file or directory with a safe relative path."""
    name = PurePosixPath(member.name)
    if member.name.startswith(("/", "\\")) or name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise StageError(ErrorCode.INVALID_SCENE, f"The scene archive holds an unsafe path: {member.name!r}.")
    if not (member.isfile() or member.isdir()):
        raise StageError(
            ErrorCode.INVALID_SCENE,
            f"The scene archive holds {member.name!r}, which is not a regular file or directory (a link or device).",
        )
    if member.size > MAX_MEMBER_BYTES:
        raise StageError(ErrorCode.INVALID_SCENE, f"The scene archive member {member.name!r} is too large.")


def unpack_scene(tar_path: Path, dest: Path) -> Path:
    """Extract a scene archive into ``dest`` (which must not exist yet) and return ``dest``.

    Args:
        tar_path: an archive written by :func:`pack_scene`.
        dest: the scene directory to create.

    Returns:
        ``dest``, holding the scene.

    Raises:
        StageError: ``INVALID_SCENE`` for an unreadable archive, an absolute or ``..`` path, a link,
            device or other special member, too many or too large members, a missing ``scene.json``,
            or an existing ``dest``.
    """
    tar_path, dest = Path(tar_path), Path(dest)
    if dest.exists():
        raise StageError(ErrorCode.INVALID_SCENE, f"Cannot unpack the scene: {dest} already exists.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.unpack"
    try:
        with tarfile.open(tar_path, "r:") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise StageError(ErrorCode.INVALID_SCENE, f"The scene archive has too many members ({len(members)}).")
            total = 0
            for member in members:
                _check_member(member)
                total += member.size
            if total > MAX_TOTAL_BYTES:
                raise StageError(ErrorCode.INVALID_SCENE, f"The scene archive is too large ({total} bytes unpacked).")
            staging.mkdir()
            tar.extractall(staging, members=members, filter="data")
        if not (staging / SCENE_FILE).is_file():
            raise StageError(ErrorCode.INVALID_SCENE, f"The scene archive has no {SCENE_FILE}.")
        staging.rename(dest)
    except (tarfile.TarError, OSError) as exc:
        raise StageError(ErrorCode.INVALID_SCENE, f"The scene archive cannot be read: {exc}.") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
