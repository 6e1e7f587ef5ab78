"""The janitor: removes what a crashed web server leaves behind, at start-up and every ``janitor_interval_s``.

A server killed mid-request cannot clean up after itself. The janitor relies on three invariants
that hold whatever the upload code does, and touches nothing younger than ``janitor_min_age_s``
(so an upload in progress never loses a byte):

- **Upload temp files** are regular files named ``*.part`` directly in ``VID2SCENE_DATA_DIR/uploads``,
  written as the body arrives (``web_server/uploads.py``). One untouched (``mtime``) for the minimum
  age belongs to no live request.
- **A GridFS file is complete only once its files document exists**: :class:`web_server.store.FileUpload`
  (and GridFS itself) inserts the chunks first and the files document last. Chunks without a files
  document whose newest chunk is older than the minimum age are an upload that died.
- **Every kept file is referenced by a job**: the job's ``input.file_id`` or an artifact's
  ``file_id`` in one of its stages, or a run's ``shared_file_ids`` (a run references the input
  and SfM result of the job it started from, which may be deleted before it). A files document older than the minimum age that no job
  references (its job was never written, was deleted, or the attempt that uploaded it never
  reported) is removed with its chunks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bson import ObjectId
from starlette.concurrency import run_in_threadpool

from web_server.store import BucketFile, Store, as_utc, utcnow

logger = logging.getLogger(__name__)

#: Where the upload code writes its temporary files, under the data dir, and their suffix.
UPLOAD_TEMP_DIR = "uploads"
UPLOAD_TEMP_SUFFIX = ".part"
_BATCH = 500


@dataclass
class JanitorReport:
    """What one pass removed."""

    temp_files: int = 0
    temp_bytes: int = 0
    orphan_chunk_groups: int = 0
    orphan_chunks: int = 0
    unreferenced_files: int = 0
    unreferenced_bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.temp_files or self.orphan_chunk_groups or self.unreferenced_files)


def upload_temp_dir(data_dir: Path) -> Path:
    """The folder of upload temp files under ``data_dir``."""
    return data_dir / UPLOAD_TEMP_DIR


class Janitor:
    """Finds and removes crash leftovers older than ``min_age_s``.

    Args:
        store: the database and its file bucket.
        data_dir: the server's data dir (``VID2SCENE_DATA_DIR``).
        min_age_s: a leftover must be untouched this long before it is removed.
    """

    def __init__(self, store: Store, data_dir: Path, min_age_s: float) -> None:
        self.store = store
        self.data_dir = data_dir
        self.min_age_s = min_age_s

    def sweep(self, now: datetime | None = None) -> JanitorReport:
        """One pass over temp files, orphan chunk groups and unreferenced files.

        Args:
            now: the current time (tests pass a later one to age everything).

        Returns:
            What was removed.
        """
        now = now or utcnow()
        cutoff = now - timedelta(seconds=self.min_age_s)
        report = JanitorReport()
        self._temp_files(cutoff, report)
        self._orphan_chunks(cutoff, report)
        self._unreferenced_files(cutoff, report)
        return report

    def _temp_files(self, cutoff: datetime, report: JanitorReport) -> None:
        folder = upload_temp_dir(self.data_dir)
        if not folder.is_dir():
            return
        for path in folder.iterdir():
            if not path.name.endswith(UPLOAD_TEMP_SUFFIX):
                continue
            try:
                stat = path.lstat()
            except FileNotFoundError:
                continue
            if not path.is_file() or path.is_symlink() or stat.st_mtime > cutoff.timestamp():
                continue
            path.unlink(missing_ok=True)
            report.temp_files += 1
            report.temp_bytes += stat.st_size

    def _orphan_chunks(self, cutoff: datetime, report: JanitorReport) -> None:
        group_ids = self.store.chunk_group_ids()
        for start in range(0, len(group_ids), _BATCH):
            batch = group_ids[start : start + _BATCH]
            complete = self.store.complete_file_ids(batch)
            for files_id in batch:
                if files_id in complete:
                    continue
                newest = self.store.newest_chunk_id(files_id)
                if newest is None or not _written_before(newest, files_id, cutoff):
                    continue
                report.orphan_chunk_groups += 1
                report.orphan_chunks += self.store.delete_chunks(files_id)

    def _unreferenced_files(self, cutoff: datetime, report: JanitorReport) -> None:
        by_job: dict[str | None, list[BucketFile]] = {}
        for stored in self.store.files_uploaded_before(cutoff):
            by_job.setdefault(stored.job_id, []).append(stored)
        job_ids = [job_id for job_id in by_job if job_id is not None]
        referenced: set[Any] = set()
        for start in range(0, len(job_ids), _BATCH):
            referenced.update(self.store.referenced_file_ids(job_ids[start : start + _BATCH]))
        candidates = [
            stored.file_id for files in by_job.values() for stored in files if stored.file_id not in referenced
        ]
        for start in range(0, len(candidates), _BATCH):  # a run still uses a deleted job's input or SfM result
            referenced.update(self.store.borrowed_file_ids(candidates[start : start + _BATCH]))
        for files in by_job.values():
            for stored in files:
                if stored.file_id in referenced:
                    continue
                self.store.delete_file(stored.file_id)
                report.unreferenced_files += 1
                report.unreferenced_bytes += stored.length


def _written_before(chunk_id: Any, files_id: Any, cutoff: datetime) -> bool:
    """Whether a chunk group's newest chunk was written before ``cutoff`` (judged by its ObjectId)."""
    stamp = chunk_id if isinstance(chunk_id, ObjectId) else files_id
    if not isinstance(stamp, ObjectId):
        return False  # no time to judge by: never removed
    return as_utc(stamp.generation_time) <= cutoff


async def run_janitor(janitor: Janitor, interval_s: float) -> None:
    """Sweep at once (the start-up pass), then every ``interval_s``, forever."""
    while True:
        try:
            report = await run_in_threadpool(janitor.sweep)
            if report:
                logger.info("janitor removed crash leftovers: %s", report)
        except Exception:
            logger.exception("janitor pass failed; trying again in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
