"""A worker's scratch space: one run folder per live process, and removal of the folders of dead ones.

A worker process killed with SIGKILL (or a machine that lost power) cannot remove its scratch
files, so every process works in a run folder of its own and holds a lock on it for its whole life;
the next process to start on the same scratch root removes every run folder whose lock nobody holds.

Layout of a scratch root (``VID2SCENE_DATA_DIR/scratch/<stage>/``)::

    run-<pid>-<hex>.lock   locked with ``fcntl.flock(LOCK_EX)`` by the live process that owns the run
    run-<pid>-<hex>/       that process's per-attempt folders

The kernel drops a ``flock`` when its process dies, however it dies, so "not locked" means "its
process is gone". Anything else in the root (a folder without a lock file, a stray file) has no
live owner either and is removed as well. Locks are advisory and per host: a scratch root must not
be shared between machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
RUN_PREFIX = "run-"


@dataclass(frozen=True)
class Removed:
    """What :func:`remove_stale` removed: how many entries and how many bytes they held."""

    entries: int = 0
    bytes: int = 0


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(OSError):
            return path.lstat().st_size
        return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


def _remove(path: Path) -> int:
    size = _size(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return size


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path``, or None when another process holds it (or it vanished)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_stale(root: Path) -> Removed:
    """Remove the run folders under ``root`` whose owning process is gone, and anything unowned.

    Args:
        root: a scratch root (missing: nothing to do).

    Returns:
        The number of entries removed and their bytes.
    """
    if not root.is_dir():
        return Removed()
    entries = removed_bytes = 0
    locks = {p.name[: -len(LOCK_SUFFIX)] for p in root.iterdir() if p.name.endswith(LOCK_SUFFIX)}
    for run in sorted(locks):
        lock = root / f"{run}{LOCK_SUFFIX}"
        fd = _try_lock(lock)
        if fd is None:
            continue  # a live process owns it
        try:
            removed_bytes += _remove(root / run)
            lock.unlink(missing_ok=True)
            entries += 1
        finally:
            os.close(fd)
    for path in root.iterdir():
        if path.name.endswith(LOCK_SUFFIX) or path.name in locks:
            continue
        if (root / f"{path.name}{LOCK_SUFFIX}").exists():
            continue  # its owner created the lock after the listing above
        removed_bytes += _remove(path)
        entries += 1
    return Removed(entries=entries, bytes=removed_bytes)


class ScratchSpace:
    """This process's run folder under a scratch root, locked while in use; stale ones removed first.

    Args:
        root: the scratch root (``VID2SCENE_DATA_DIR/scratch/<stage>``); created if missing.

    Example:
        >>> with ScratchSpace(Path(tmp) / "scratch" / "sfm") as run_dir:  # doctest: +SKIP
        ...     (run_dir / "job-1").mkdir()
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_dir: Path | None = None
        self._lock_path: Path | None = None
        self._fd: int | None = None

    def __enter__(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        removed = remove_stale(self.root)
        if removed.entries:
            log.info(
                "removed %d stale scratch entries (%d bytes) left by dead processes in %s",
                removed.entries,
                removed.bytes,
                self.root,
            )
        while True:
            name = f"{RUN_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
            lock = self.root / f"{name}{LOCK_SUFFIX}"
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == lock.stat().st_ino
            except FileNotFoundError:
                same = False
            if same:  # another process's clean-up did not unlink it between our create and our lock
                break
            os.close(fd)
        self._fd, self._lock_path = fd, lock
        self.run_dir = self.root / name
        self.run_dir.mkdir()
        return self.run_dir

    def __exit__(self, *exc: object) -> None:
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._lock_path is not None:
            self._lock_path.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)
        self.run_dir = self._lock_path = self._fd = None
