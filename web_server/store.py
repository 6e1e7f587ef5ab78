"""MongoDB access: the ``jobs`` and ``api_keys`` collections and the ``files`` GridFS bucket.

Every state change elsewhere is one atomic ``find_one_and_update`` whose filter states the
condition it relies on (a lease, a status, a version); no transactions, no change streams, so a
standalone ``mongod`` (or SecantusDB) is enough.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gridfs
import pymongo
from bson import ObjectId
from pymongo.database import Database

FILES_BUCKET = "files"
_CHUNK = 1024 * 1024
#: Chunks sent per ``insert_many`` by :class:`FileUpload` (bounded memory, fewer round trips).
_BATCH_CHUNKS = 1


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A datetime read from MongoDB as aware UTC (clients without ``tz_aware`` return naive UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def connect(mongo_url: str, db_name: str, *, timeout_ms: int = 2000) -> Database:
    """A database handle on a client that returns aware datetimes.

    Args:
        mongo_url: the MongoDB URL.
        db_name: the database name.
        timeout_ms: server selection and connect timeout: how long a call waits for an unreachable
            MongoDB before it raises (the API then answers 503 ``STORE_UNAVAILABLE``).

    Returns:
        The pymongo database.
    """
    client: pymongo.MongoClient = pymongo.MongoClient(
        mongo_url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    return client[db_name]


class FileUpload:
    """A file written into the GridFS bucket one chunk at a time, hashing it on the way.

    pymongo's own ``GridIn`` batches up to 48 MB of chunks per ``insert_many``; this writer inserts
    every :data:`_BATCH_CHUNKS` chunks, so memory holds a few MB whatever the file size. The files
    document (with ``metadata.sha256``) is inserted by :meth:`close`, so a file is invisible until
    complete; :meth:`abort` deletes the chunks written so far. The layout is standard GridFS, read
    back with ``GridFSBucket``.

    Args:
        store: the store whose bucket receives the file.
        filename: the GridFS file name.
        metadata: the file's metadata (``job_id``, ``name``, ...).
    """

    def __init__(self, store: Store, filename: str, metadata: dict[str, Any]) -> None:
        self._store = store
        self._filename = filename
        self._metadata = dict(metadata)
        self._buffer = bytearray()
        self._chunk_index = 0
        self._digest = hashlib.sha256()
        self.file_id = ObjectId()
        self.length = 0

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the bytes written so far."""
        return self._digest.hexdigest()

    def _insert_chunks(self, size: int) -> None:
        docs = []
        with memoryview(self._buffer) as view:  # one copy per chunk, not two
            for start in range(0, size, _CHUNK):
                data = bytes(view[start : min(start + _CHUNK, size)])
                docs.append({"files_id": self.file_id, "n": self._chunk_index, "data": data})
                self._chunk_index += 1
        if docs:
            self._store.chunk_docs.insert_many(docs, ordered=True)
        del self._buffer[:size]

    def write(self, data: bytes) -> None:
        """Append bytes; every few full chunks go to the database."""
        self._digest.update(data)
        self.length += len(data)
        self._buffer += data
        if len(self._buffer) >= _CHUNK * _BATCH_CHUNKS:
            self._insert_chunks(len(self._buffer) // _CHUNK * _CHUNK)

    def close(self, *, filename: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        """Write the remaining chunks and the files document; the file is visible from now on.

        Args:
            filename: replaces the name given at creation (an upload's name is known once probed).
            metadata: merged into the metadata given at creation.
        """
        self._insert_chunks(len(self._buffer))
        self._store.file_docs.insert_one(
            {
                "_id": self.file_id,
                "length": self.length,
                "chunkSize": _CHUNK,
                "uploadDate": utcnow(),
                "filename": filename or self._filename,
                "metadata": {**self._metadata, **(metadata or {}), "sha256": self.sha256},
            }
        )

    def abort(self) -> None:
        """Drop what was written: the chunks, and the files document when :meth:`close` already wrote it."""
        self._buffer.clear()
        self._store.file_docs.delete_one({"_id": self.file_id})
        self._store.chunk_docs.delete_many({"files_id": self.file_id})


class Store:
    """The collections and the file bucket of one database.

    Args:
        db: the pymongo database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.jobs = db["jobs"]
        self.api_keys = db["api_keys"]
        self.workers = db["workers"]
        self.stage_timings = db["stage_timings"]
        self.files = gridfs.GridFSBucket(db, bucket_name=FILES_BUCKET, chunk_size_bytes=_CHUNK)
        self.file_docs = db[f"{FILES_BUCKET}.files"]
        self.chunk_docs = db[f"{FILES_BUCKET}.chunks"]

    def ensure_indexes(self) -> None:
        """Create the indexes the queries rely on (idempotent)."""
        self.jobs.create_index([("owner", 1), ("created_at", -1), ("_id", -1)])
        self.jobs.create_index([("owner", 1), ("updated_at", -1)])
        # Partial, not sparse: a sparse compound index still holds every job (``owner`` is always
        # there), so two jobs without a key would collide on ``(owner, null)``.
        self.jobs.create_index(
            [("owner", 1), ("idempotency_key", 1)],
            unique=True,
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        )
        self.jobs.create_index([("status", 1)])
        self.api_keys.create_index([("token_sha256", 1)], unique=True)
        self.workers.create_index([("announced_at", -1)])
        self.stage_timings.create_index([("stage", 1), ("device", 1), ("finished_at", -1)])
        self.file_docs.create_index([("metadata.job_id", 1), ("metadata.name", 1)])
        self.file_docs.create_index([("filename", 1), ("uploadDate", 1)])
        self.chunk_docs.create_index([("files_id", 1), ("n", 1)], unique=True)

    # --- workers ----------------------------------------------------------------------------------
    def record_worker(self, worker_id: str, stage: str, device: str, now: datetime) -> None:
        """Remember a training worker's announcement (one document per worker id, the latest wins)."""
        self.workers.update_one(
            {"_id": worker_id}, {"$set": {"stage": stage, "device": device, "announced_at": now}}, upsert=True
        )

    def latest_worker_device(self) -> str | None:
        """The device of the training worker that announced itself last, or None when none has."""
        doc = self.workers.find_one({}, {"device": 1}, sort=[("announced_at", -1)])
        return None if doc is None else str(doc["device"])

    def worker_devices(self) -> dict[str, tuple[str, str]]:
        """Every announced worker: worker id → ``(stage, device)``, newest announcement first."""
        docs = self.workers.find({}, {"stage": 1, "device": 1}, sort=[("announced_at", -1)])
        return {str(doc["_id"]): (str(doc.get("stage", "")), str(doc.get("device", ""))) for doc in docs}

    # --- stage timings (the ETA's history) --------------------------------------------------------
    def record_stage_timing(self, timing: dict[str, Any]) -> None:
        """Keep one finished stage's measured cost (``job_id, stage, device, preset, work, seconds, ...``).

        One document per job and stage (a stage recorded again replaces its earlier figures).
        """
        self.stage_timings.replace_one({"job_id": timing["job_id"], "stage": timing["stage"]}, timing, upsert=True)

    def recent_stage_timings(self, stage: str, device: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` timings of ``stage`` on ``device``, newest first."""
        cursor = self.stage_timings.find({"stage": stage, "device": device}, {"_id": 0}).sort("finished_at", -1)
        return list(cursor.limit(limit))

    def ping(self) -> None:
        """Raise when MongoDB does not answer."""
        self.db.command("ping")

    # --- files ------------------------------------------------------------------------------------
    def open_upload(self, filename: str, metadata: dict[str, Any]) -> FileUpload:
        """A new file in the bucket, written with :meth:`FileUpload.write` and finished by ``close()``."""
        return FileUpload(self, filename, metadata)

    def put_file(self, job_id: str, name: str, source: Path, *, content_type: str, stage: str) -> dict[str, Any]:
        """Copy a local file into the bucket, hashing it on the way.

        Args:
            job_id: the owning job.
            name: the artifact name (``input.mp4``, ``scene.ply``, ...).
            source: the local file.
            content_type: its media type.
            stage: ``upload`` or the stage that produced it.

        Returns:
            ``{file_id, size, sha256}``.
        """
        upload = self.open_upload(name, {"job_id": job_id, "name": name, "content_type": content_type, "stage": stage})
        try:
            with source.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    upload.write(chunk)
            upload.close()
        except BaseException:
            upload.abort()
            raise
        return {"file_id": upload.file_id, "size": upload.length, "sha256": upload.sha256}

    def iter_file(self, file_id: Any, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the bytes ``[start, end)`` of a stored file in chunks (``end`` None: to the end)."""
        with self.files.open_download_stream(file_id) as stream:
            stop = stream.length if end is None else min(end, stream.length)
            stream.seek(start)
            remaining = stop - start
            while remaining > 0:
                chunk = stream.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def delete_job_files(self, job_id: str, *, keep: set[Any] | None = None, name: str | None = None) -> int:
        """Delete a job's files (only those named ``name`` when given), except the ids in ``keep``.

        Returns:
            How many files were deleted.
        """
        query: dict[str, Any] = {"metadata.job_id": job_id}
        if name is not None:
            query["metadata.name"] = name
        deleted = 0
        for doc in self.file_docs.find(query, {"_id": 1}):
            if keep and doc["_id"] in keep:
                continue
            try:
                self.files.delete(doc["_id"])
                deleted += 1
            except gridfs.errors.NoFile:
                continue
        return deleted
