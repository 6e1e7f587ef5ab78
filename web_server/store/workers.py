"""The ``workers`` collection: the training workers' announcements (which device they run on)."""

from __future__ import annotations

from datetime import datetime

from web_server.store.base import Collections


class WorkerQueries(Collections):
    """The ``workers`` collection's reads and writes."""

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
