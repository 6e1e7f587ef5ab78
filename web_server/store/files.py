"""The ``files`` GridFS bucket: chunked writes, ranged reads, a job's files, and the janitor's queries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import gridfs
from bson import ObjectId

from web_server.models import StoredFile
from web_server.store.base import CHUNK_SIZE, Collections, as_utc, utcnow

#: Chunks sent per ``insert_many`` by :class:`FileUpload` (bounded memory, fewer round trips).
_BATCH_CHUNKS = 1


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

    def __init__(self, store: FileQueries, filename: str, metadata: dict[str, Any]) -> None:
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
            for start in range(0, size, CHUNK_SIZE):
                data = bytes(view[start : min(start + CHUNK_SIZE, size)])
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
        if len(self._buffer) >= CHUNK_SIZE * _BATCH_CHUNKS:
            self._insert_chunks(len(self._buffer) // CHUNK_SIZE * CHUNK_SIZE)

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
                "chunkSize": CHUNK_SIZE,
                "uploadDate": utcnow(),
                "filename": filename or self._filename,
                "metadata": {**self._metadata, **(metadata or {}), "sha256": self.sha256},
            }
        )

    def abort(self) -> None:
        """Drop what was written: the chunks, and the files document when :meth:`close` already wrote it."""
        self._buffer.clear()
        self._store.delete_file(self.file_id)


@dataclass(frozen=True)
class BucketFile:
    """A complete file of the bucket as the janitor sees it.

    Attributes:
        file_id: the GridFS file id.
        length: its size in bytes.
        job_id: the job named in its metadata, or None.
    """

    file_id: Any
    length: int
    job_id: str | None


class FileQueries(Collections):
    """The ``files`` bucket's reads and writes."""

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
                while chunk := fh.read(CHUNK_SIZE):
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
                chunk = stream.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def find_lease_upload(self, job_id: str, stage: str, name: str, lease_id: str) -> StoredFile | None:
        """The newest file named ``name`` that a lease holder uploaded for the job, or None.

        Args:
            job_id: the job.
            stage: the stage the file belongs to (recorded in the returned :class:`StoredFile`).
            name: the artifact name.
            lease_id: the lease it was uploaded under.
        """
        doc = self.file_docs.find_one(
            {"metadata.job_id": job_id, "metadata.name": name, "metadata.lease_id": lease_id},
            sort=[("uploadDate", -1)],
        )
        if doc is None:
            return None
        meta = doc["metadata"]
        return StoredFile(
            name=name,
            stage=stage,
            file_id=doc["_id"],
            size=int(doc["length"]),
            sha256=meta["sha256"],
            content_type=meta["content_type"],
            created_at=as_utc(doc["uploadDate"]),
        )

    def job_file_ids(self, job_id: str) -> list[Any]:
        """The ids of the files stored for the job (``metadata.job_id``)."""
        return [doc["_id"] for doc in self.file_docs.find({"metadata.job_id": job_id}, {"_id": 1})]

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

    # --- the janitor's queries --------------------------------------------------------------------
    def chunk_group_ids(self) -> list[Any]:
        """The distinct ``files_id`` of every chunk in the bucket (complete files and orphans alike)."""
        return list(self.chunk_docs.distinct("files_id"))

    def complete_file_ids(self, file_ids: list[Any]) -> set[Any]:
        """Those of ``file_ids`` that have a files document (a file is complete once it has one)."""
        return {d["_id"] for d in self.file_docs.find({"_id": {"$in": file_ids}}, {"_id": 1})}

    def newest_chunk_id(self, file_id: Any) -> Any | None:
        """The ``_id`` of the highest-numbered chunk of ``file_id``, or None when it has no chunk."""
        doc = self.chunk_docs.find_one({"files_id": file_id}, {"_id": 1}, sort=[("n", -1)])
        return None if doc is None else doc["_id"]

    def delete_chunks(self, file_id: Any) -> int:
        """Delete every chunk of ``file_id``; returns how many."""
        return int(self.chunk_docs.delete_many({"files_id": file_id}).deleted_count)

    def files_uploaded_before(self, cutoff: datetime) -> list[BucketFile]:
        """The complete files whose upload finished at or before ``cutoff``."""
        docs = self.file_docs.find({"uploadDate": {"$lte": cutoff}}, {"_id": 1, "length": 1, "metadata.job_id": 1})
        return [
            BucketFile(file_id=d["_id"], length=int(d.get("length", 0)), job_id=(d.get("metadata") or {}).get("job_id"))
            for d in docs
        ]

    def delete_file(self, file_id: Any) -> None:
        """Delete a file: its files document first (the file is gone from then on), then its chunks."""
        self.file_docs.delete_one({"_id": file_id})
        self.chunk_docs.delete_many({"files_id": file_id})
