"""MongoDB access: the ``jobs``, ``api_keys``, ``workers``, ``stage_timings`` collections and the ``files`` bucket.

The one place that queries MongoDB (the FastAPI full-stack template's ``crud.py``): routers and
helpers call the named, typed methods of :class:`Store` and never a collection. The parts, one
module each: :mod:`~web_server.store.jobs` (job reads and the conditional writes of the job state
machine), :mod:`~web_server.store.files` (the bucket), :mod:`~web_server.store.keys` (API keys),
:mod:`~web_server.store.webhooks` (webhook secrets and outboxes), :mod:`~web_server.store.workers` (worker
announcements), :mod:`~web_server.store.timings` (stage durations, the ETA's history);
:mod:`~web_server.store.base` holds the connection and the collections.

Every state change is one atomic ``find_one_and_update``/``update_one`` whose filter states the
condition it relies on (a lease, a status, a version); no transactions, no change streams, so a
standalone ``mongod`` (or SecantusDB) is enough. Job, file and key documents are written from the
``Stored*`` models of :mod:`web_server.models`, so their fields are defined there once; two kinds are
plain dicts, each defined by the one module that writes it: a job's webhook outbox
(:mod:`web_server.webhook_events`) and the stage timings (:mod:`web_server.eta_history`).
"""

from __future__ import annotations

from web_server.store.base import CHUNK_SIZE, FILES_BUCKET, as_utc, connect, to_document, utcnow
from web_server.store.files import BucketFile, FileQueries, FileUpload
from web_server.store.jobs import JobQueries
from web_server.store.keys import KeyQueries
from web_server.store.timings import TimingQueries
from web_server.store.webhooks import WebhookQueries
from web_server.store.workers import WorkerQueries

__all__ = [
    "CHUNK_SIZE",
    "FILES_BUCKET",
    "BucketFile",
    "FileUpload",
    "Store",
    "as_utc",
    "connect",
    "to_document",
    "utcnow",
]


class Store(JobQueries, FileQueries, KeyQueries, WebhookQueries, WorkerQueries, TimingQueries):
    """The collections and the file bucket of one database, with every query the server runs.

    Args:
        db: the pymongo database.
    """

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
        self.jobs.create_index([("webhook.next_attempt_at", 1)])  # due webhook deliveries
        self.jobs.create_index([("webhook.open", 1)])  # jobs whose final status has no webhook event yet
        self.jobs.create_index([("root_job", 1), ("created_at", 1)])
        self.jobs.create_index([("shared_file_ids", 1)])
        self.api_keys.create_index([("token_sha256", 1)], unique=True)
        self.workers.create_index([("announced_at", -1)])
        self.stage_timings.create_index([("stage", 1), ("device", 1), ("finished_at", -1)])
        self.stage_timings.create_index([("job_id", 1), ("stage", 1)], unique=True)  # record_stage_timing's upsert
        self.file_docs.create_index([("metadata.job_id", 1), ("metadata.name", 1)])
        self.file_docs.create_index([("filename", 1), ("uploadDate", 1)])
        self.chunk_docs.create_index([("files_id", 1), ("n", 1)], unique=True)

    def ping(self) -> None:
        """Raise when MongoDB does not answer."""
        self.db.command("ping")
