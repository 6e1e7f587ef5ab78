"""The database handle and the collections the store parts read.

The collections: ``jobs``, ``api_keys``, ``workers``, ``stage_timings`` and the ``files`` bucket.

Only the modules of this package touch these collections (``tests/web_server/test_store_boundary.py``
checks it); everything else calls the named methods of :class:`web_server.store.Store`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

import gridfs
import pymongo
from pydantic import BaseModel
from pymongo.collection import Collection
from pymongo.database import Database

FILES_BUCKET = "files"
#: The GridFS chunk size of the ``files`` bucket.
CHUNK_SIZE = 1024 * 1024


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A datetime read from MongoDB as aware UTC (clients without ``tz_aware`` return naive UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def connect(mongo_url: str, db_name: str, *, timeout_ms: int = 2000) -> Database[Any]:
    """A database handle on a client that returns aware datetimes.

    Args:
        mongo_url: the MongoDB URL.
        db_name: the database name.
        timeout_ms: server selection and connect timeout: how long a call waits for an unreachable
            MongoDB before it raises (the API then answers 503 ``STORE_UNAVAILABLE``).

    Returns:
        The pymongo database.
    """
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        mongo_url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    return client[db_name]


def to_document(model: BaseModel) -> dict[str, Any]:
    """The MongoDB document of a stored model: every field of the model, under its stored name (``_id``)."""
    return model.model_dump(by_alias=True)


class Collections:
    """The collections and the file bucket of one database, shared by the store's parts.

    Args:
        db: the pymongo database.
    """

    def __init__(self, db: Database[Any]) -> None:
        self.db = db
        self.jobs: Collection[Any] = db["jobs"]
        self.api_keys: Collection[Any] = db["api_keys"]
        self.workers: Collection[Any] = db["workers"]
        self.stage_timings: Collection[Any] = db["stage_timings"]
        self.files = gridfs.GridFSBucket(db, bucket_name=FILES_BUCKET, chunk_size_bytes=CHUNK_SIZE)
        self.file_docs: Collection[Any] = db[f"{FILES_BUCKET}.files"]
        self.chunk_docs: Collection[Any] = db[f"{FILES_BUCKET}.chunks"]
