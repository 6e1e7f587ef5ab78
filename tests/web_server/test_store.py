"""The file store: chunked GridFS writes that read back byte for byte, and aborts that leave nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from web_server.store import Store


def test_a_multi_chunk_file_reads_back_whole_and_in_ranges(mongo_db: Any, tmp_path: Path) -> None:
    store = Store(mongo_db)
    store.ensure_indexes()
    data = np.random.default_rng(1).integers(0, 256, size=2 * 1024 * 1024 + 12345, dtype=np.uint8).tobytes()
    source = tmp_path / "blob"
    source.write_bytes(data)
    stored = store.put_file("job1", "scene.ply", source, content_type="application/octet-stream", stage="gs")
    assert stored["size"] == len(data)
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert b"".join(store.iter_file(stored["file_id"])) == data
    assert (
        b"".join(store.iter_file(stored["file_id"], 1024 * 1024 - 5, 1024 * 1024 + 5))
        == data[1024 * 1024 - 5 : 1024 * 1024 + 5]
    )
    assert mongo_db["files.files"].find_one({"_id": stored["file_id"]})["metadata"]["sha256"] == stored["sha256"]
    assert store.delete_job_files("job1") == 1
    assert mongo_db["files.chunks"].count_documents({}) == 0


def test_an_aborted_upload_leaves_no_file_and_no_chunks(mongo_db: Any) -> None:
    store = Store(mongo_db)
    upload = store.open_upload("sfm.tar", {"job_id": "job2", "name": "sfm.tar"})
    upload.write(b"x" * (3 * 1024 * 1024))
    assert mongo_db["files.chunks"].count_documents({}) > 0
    upload.abort()
    assert mongo_db["files.chunks"].count_documents({}) == 0
    assert mongo_db["files.files"].count_documents({}) == 0
