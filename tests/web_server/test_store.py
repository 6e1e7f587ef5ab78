"""The store: chunked GridFS writes that read back byte for byte, aborts that leave nothing, documents from models."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from web_server.models import StoredApiKey, StoredFile, StoredJob, StoredStage
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


def _stored_names(model: type[Any]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def test_new_job_and_key_documents_hold_exactly_the_fields_of_their_models(server: Any, tiny_video: bytes) -> None:
    response = server.submit(tiny_video, methods="gs,nerf", name="kitchen")
    assert response.status_code == 202
    doc = server.db.jobs.find_one({"_id": response.json()["id"]})
    assert set(doc) == _stored_names(StoredJob)
    assert set(doc["input"]) == _stored_names(StoredFile)
    assert sorted(doc["stages"]) == ["gs", "nerf", "sfm"]
    for stage in doc["stages"].values():
        assert set(stage) == _stored_names(StoredStage)
    assert StoredJob.model_validate(doc).model_dump(by_alias=True) == doc  # nothing outside the model
    assert (doc["name"], doc["methods"], doc["idempotency_key"]) == ("kitchen", ["gs", "nerf"], None)
    key = server.db.api_keys.find_one({"owner": "alice"})
    assert set(key) == _stored_names(StoredApiKey)
