"""The janitor's rules on a real MongoDB-wire store: crash leftovers go, anything young or referenced stays."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.web_server.conftest import FakeWorker, Server
from web_server.janitor import Janitor, upload_temp_dir
from web_server.store import Store, utcnow

MIN_AGE_S = 3600.0


def _later() -> Any:
    return utcnow() + timedelta(seconds=MIN_AGE_S + 60)


def _half_written(store: Store, job_id: str, chunks: int = 3) -> Any:
    """An upload that died: its chunks are in the bucket, its files document never was."""
    upload = store.open_upload("input.mp4", {"job_id": job_id, "name": "input.mp4"})
    upload.write(os.urandom(chunks * 1024 * 1024))
    return upload.file_id


def _complete(store: Store, job_id: str, name: str, data: bytes) -> Any:
    upload = store.open_upload(name, {"job_id": job_id, "name": name})
    upload.write(data)
    upload.close()
    return upload.file_id


def test_old_upload_temp_files_are_removed_and_young_or_other_files_stay(mongo_db: Any, tmp_path: Path) -> None:
    folder = upload_temp_dir(tmp_path)
    folder.mkdir(parents=True)
    old, young, other = folder / "a.part", folder / "b.part", folder / "notes.txt"
    for path in (old, young, other):
        path.write_bytes(b"x" * 1000)
    stale = time.time() - MIN_AGE_S - 60
    os.utime(old, (stale, stale))
    os.utime(other, (stale, stale))
    report = Janitor(Store(mongo_db), tmp_path, MIN_AGE_S).sweep()
    assert (report.temp_files, report.temp_bytes) == (1, 1000)
    assert not old.exists() and young.exists() and other.exists()


def test_chunk_groups_of_uploads_that_died_are_removed_once_old_enough(mongo_db: Any, tmp_path: Path) -> None:
    store = Store(mongo_db)
    dead = _half_written(store, "job-x")
    janitor = Janitor(store, tmp_path, MIN_AGE_S)
    assert not janitor.sweep()  # as young as an upload in progress: untouched
    assert store.chunk_docs.count_documents({"files_id": dead}) == 3
    report = janitor.sweep(_later())
    assert (report.orphan_chunk_groups, report.orphan_chunks) == (1, 3)
    assert store.chunk_docs.count_documents({}) == 0


def test_files_no_job_references_are_removed_and_a_jobs_input_and_artifacts_stay(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    response = server.submit(tiny_video)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    (sfm,) = server.broker.requests_for("sfm")
    worker.run_stage(sfm, {"sfm.tar": b"scene", "report-sfm.json": b"{}"})
    store: Store = server.client.app.state.store
    kept = {d["_id"] for d in store.file_docs.find({}, {"_id": 1})}
    assert len(kept) == 3  # the input and the two artifacts
    no_job = _complete(store, "never-written", "input.mp4", b"v" * 5000)  # crashed before the job insert
    lost_attempt = _complete(store, job_id, "sfm.tar", b"t" * 700)  # uploaded by a lease that never reported
    janitor = Janitor(store, server.settings.data_dir, MIN_AGE_S)
    assert not janitor.sweep()
    report = janitor.sweep(_later())
    assert (report.unreferenced_files, report.unreferenced_bytes) == (2, 5700)
    left = {d["_id"] for d in store.file_docs.find({}, {"_id": 1})}
    assert left == kept and no_job not in left and lost_attempt not in left
    assert store.chunk_docs.count_documents({"files_id": {"$in": [no_job, lost_attempt]}}) == 0
    download = server.client.get(f"/v1/jobs/{job_id}", headers=server.auth())
    assert {a["name"] for a in download.json()["artifacts"]} >= {"sfm.tar", "report-sfm.json"}
