"""Webhooks: the API keys' webhook secrets and the outbox of events on each job.

The outbox is ``webhook`` on the job document (:mod:`web_server.webhook_events` appends to it,
:mod:`web_server.webhook_delivery` delivers from it under a per-job lease), so delivery state
survives a restart and several server processes share the work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo

from web_server.store.base import Collections


class WebhookQueries(Collections):
    """Webhook secrets of API keys and the webhook outbox of jobs."""

    def webhook_secret(self, key_id: str) -> str | None:
        """The webhook secret of an API key (revoked or not), or None when the key or its secret is missing."""
        doc = self.api_keys.find_one({"_id": key_id}, {"webhook_secret": 1})
        return None if doc is None else doc.get("webhook_secret")

    def set_webhook_secret(self, key_id: str, secret: str) -> bool:
        """Replace an API key's webhook secret; returns whether the key exists."""
        return self.api_keys.update_one({"_id": key_id}, {"$set": {"webhook_secret": secret}}).matched_count == 1

    def job_with_webhook(self, job_id: str) -> dict[str, Any] | None:
        """The job document when the job has a webhook, else None."""
        return self.jobs.find_one({"_id": job_id, "webhook.url": {"$type": "string"}})

    def open_webhook_job_ids(self) -> list[str]:
        """The ids of jobs with a webhook whose final status has no event yet."""
        return [doc["_id"] for doc in self.jobs.find({"webhook.open": True}, {"_id": 1})]

    def append_webhook_event(
        self,
        job_id: str,
        count: int,
        event: dict[str, Any],
        fields: dict[str, Any],
        now: datetime,
        *,
        status: str | None = None,
    ) -> bool:
        """Append ``event`` to the job's outbox when it still holds ``count`` events (and has ``status``).

        Args:
            job_id: the job.
            count: the number of events the caller read; another append since then makes this one a no-op.
            event: the outbox entry.
            fields: further ``$set`` fields (what the event notifies).
            now: when the event is due; the job's next delivery is set to it unless one is already due.
            status: the job status the event describes, when it describes one.

        Returns:
            Whether the event was appended.
        """
        query: dict[str, Any] = {"_id": job_id, "webhook.event_count": count}
        if status is not None:
            query["status"] = status
        res = self.jobs.update_one(
            query, {"$push": {"webhook.events": event}, "$set": fields, "$inc": {"webhook.event_count": 1}}
        )
        if not res.modified_count:
            return False
        self.jobs.update_one(
            {"_id": job_id, "webhook.next_attempt_at": None}, {"$set": {"webhook.next_attempt_at": now}}
        )
        return True

    def due_webhook_job_ids(self, now: datetime, limit: int) -> list[str]:
        """Up to ``limit`` jobs whose next webhook delivery is due and not leased, the longest waiting first."""
        query = {
            "webhook.next_attempt_at": {"$lte": now},
            "$or": [{"webhook.lease_until": None}, {"webhook.lease_until": {"$lte": now}}],
        }
        cursor = self.jobs.find(query, {"_id": 1}).sort("webhook.next_attempt_at", 1).limit(limit)
        return [doc["_id"] for doc in cursor]

    def lease_webhook(self, job_id: str, lease_id: str, now: datetime, until: datetime) -> dict[str, Any] | None:
        """Take the job's delivery lease (none held, or the holder's expired); returns the job's ``webhook``."""
        doc = self.jobs.find_one_and_update(
            {
                "_id": job_id,
                "webhook.url": {"$type": "string"},
                "$or": [{"webhook.lease_until": None}, {"webhook.lease_until": {"$lte": now}}],
            },
            {"$set": {"webhook.lease_id": lease_id, "webhook.lease_until": until}},
            projection={"webhook": 1},
            return_document=pymongo.ReturnDocument.AFTER,
        )
        return None if doc is None else doc["webhook"]

    def webhook_state(self, job_id: str, lease_id: str) -> dict[str, Any] | None:
        """The job's ``webhook`` while ``lease_id`` holds its lease, else None."""
        doc = self.jobs.find_one({"_id": job_id, "webhook.lease_id": lease_id}, {"webhook": 1})
        return None if doc is None else doc["webhook"]

    def record_webhook_attempt(
        self, job_id: str, lease_id: str, index: int, outcome: dict[str, Any], until: datetime
    ) -> bool:
        """Write an attempt's outcome into event ``index`` and extend the lease; returns whether ``lease_id`` held it."""
        fields = {f"webhook.events.{index}.{name}": value for name, value in outcome.items()}
        res = self.jobs.update_one(
            {"_id": job_id, "webhook.lease_id": lease_id},
            {"$set": {**fields, "webhook.lease_until": until}, "$inc": {f"webhook.events.{index}.attempts": 1}},
        )
        return res.modified_count == 1

    def release_webhook(self, job_id: str, lease_id: str, count: int, next_attempt_at: datetime | None) -> bool:
        """Give the lease back with the next delivery time, when the outbox still holds ``count`` events.

        Returns:
            False when an event was appended meanwhile (the caller looks again) or the lease is not held.
        """
        res = self.jobs.update_one(
            {"_id": job_id, "webhook.lease_id": lease_id, "webhook.event_count": count},
            {
                "$set": {
                    "webhook.lease_id": None,
                    "webhook.lease_until": None,
                    "webhook.next_attempt_at": next_attempt_at,
                }
            },
        )
        return res.modified_count == 1

    def drop_webhook_lease(self, job_id: str, lease_id: str) -> None:
        """Give the lease back as it stands (a stopping server); the due event stays due."""
        self.jobs.update_one(
            {"_id": job_id, "webhook.lease_id": lease_id},
            {"$set": {"webhook.lease_id": None, "webhook.lease_until": None}},
        )
