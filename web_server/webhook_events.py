"""Webhook events: what is sent, how it is signed, and how an event enters a job's outbox.

A job created with ``webhook_url`` carries a ``webhook`` sub-document: the URL, the API key whose
webhook secret signs its events, and ``events``, the job's outbox in order. :class:`WebhookEvents`
is the orchestrator's change listener: after every write that may change a job's status or record
its capture check, it appends the events the job has not had yet (``job.capture_checked`` once,
``job.status_changed`` per status), each with its body fixed, so every attempt sends the same bytes.
The append is conditioned on the status it describes, so concurrent writers never record a status
twice; the delivery loop (:mod:`web_server.webhook_delivery`) also runs :meth:`WebhookEvents.notify`
over open jobs now and then, which repairs a crash between a status write and its event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from datetime import datetime
from typing import Any

from shared.settings import Settings
from web_server.models import TERMINAL_JOB, StoredJob, WebhookEventPublic, WebhookPublic
from web_server.orchestration import first_error
from web_server.store import Store, as_utc

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Vid2Scene-Signature"
EVENT_ID_HEADER = "Vid2Scene-Event-Id"
EVENT_TYPE_HEADER = "Vid2Scene-Event-Type"
USER_AGENT = "vid2scene-webhooks/1"
STATUS_CHANGED = "job.status_changed"
CAPTURE_CHECKED = "job.capture_checked"
#: Appends tried per call before leaving the rest to the next write or the repair pass.
_APPEND_TRIES = 5


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Vid2Scene-Signature`` header value: ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "t.body")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def initial_state(url: str, api_key_id: str) -> dict[str, Any]:
    """The ``webhook`` sub-document of a new job: no events yet, nothing notified."""
    return {
        "url": url,
        "api_key_id": api_key_id,
        "events": [],
        "event_count": 0,
        "notified_status": None,
        "capture_notified": False,
        "open": True,
        "next_attempt_at": None,
        "lease_id": None,
        "lease_until": None,
    }


def _iso(value: datetime | None) -> str | None:
    stamp = as_utc(value)
    return None if stamp is None else stamp.isoformat().replace("+00:00", "Z")


def event_body(
    event_id: str, event_type: str, sequence: int, job: StoredJob, data: dict[str, Any], *, base_url: str, now: datetime
) -> str:
    """The JSON body of one event (compact, keys sorted): the bytes that are signed and sent."""
    payload = {
        "id": event_id,
        "type": event_type,
        "created_at": _iso(now),
        "sequence": sequence,
        "job": {
            "id": job.id,
            "name": job.name,
            "status": job.status,
            "url": f"{base_url}/v1/jobs/{job.id}",
        },
        "data": data,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def _status_data(job: StoredJob, previous: str | None) -> dict[str, Any]:
    error = first_error(job)
    return {
        "status": job.status,
        "previous_status": previous,
        "finished_at": _iso(job.finished_at),
        "error": None if error is None else {"code": error.code, "message": error.message},
    }


def new_event(
    event_type: str, sequence: int, job: StoredJob, data: dict[str, Any], settings: Settings, now: datetime
) -> dict[str, Any]:
    """An outbox entry: the event's id, type, fixed body and its delivery bookkeeping (nothing tried yet)."""
    event_id = f"evt_{uuid.uuid4().hex}"
    body = event_body(event_id, event_type, sequence, job, data, base_url=settings.public_base_url, now=now)
    return {
        "id": event_id,
        "type": event_type,
        "created_at": now,
        "body": body,
        "state": "pending",
        "attempts": 0,
        "last_attempt_at": None,
        "last_status": None,
        "last_error": None,
        "next_attempt_at": now,
        "delivered_at": None,
    }


def webhook_public(state: dict[str, Any] | None) -> WebhookPublic | None:
    """The public view of a job's ``webhook``: its URL and each event's delivery record (never the body)."""
    if state is None:
        return None
    events = [
        WebhookEventPublic(
            id=e["id"],
            type=e["type"],
            created_at=as_utc(e["created_at"]),
            state=e.get("state", "pending"),
            attempts=int(e.get("attempts", 0)),
            last_attempt_at=as_utc(e.get("last_attempt_at")),
            last_status=e.get("last_status"),
            last_error=e.get("last_error"),
            next_attempt_at=as_utc(e.get("next_attempt_at")) if e.get("state", "pending") == "pending" else None,
            delivered_at=as_utc(e.get("delivered_at")),
        )
        for e in state.get("events") or []
    ]
    return WebhookPublic(url=str(state["url"]), events=events)


class WebhookEvents:
    """Appends a job's due events to its outbox; the orchestrator calls :meth:`notify` after its writes.

    Args:
        store: the database.
        settings: the public base URL the events' job links start with.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def notify(self, job_id: str, now: datetime) -> None:
        """Record the events the job is due (its capture check, its status); never raises.

        A failure is logged; the delivery loop's repair pass records the events later.
        """
        try:
            self._append_due(job_id, now)
        except Exception:
            logger.exception("recording webhook events of job %s failed; the repair pass will", job_id)

    def _append_due(self, job_id: str, now: datetime) -> None:
        for _ in range(_APPEND_TRIES):
            doc = self.store.job_with_webhook(job_id)
            if doc is None:
                return
            state = doc["webhook"]
            job = StoredJob.model_validate(doc)
            count = int(state.get("event_count", 0))
            if job.capture is not None and not state.get("capture_notified"):
                event = new_event(CAPTURE_CHECKED, count + 1, job, {"capture": job.capture}, self.settings, now)
                self.store.append_webhook_event(job_id, count, event, {"webhook.capture_notified": True}, now)
                continue
            previous = state.get("notified_status")
            if job.status == previous:
                return
            data = _status_data(job, previous)
            event = new_event(STATUS_CHANGED, count + 1, job, data, self.settings, now)
            fields: dict[str, Any] = {"webhook.notified_status": job.status}
            if job.status in TERMINAL_JOB:
                fields["webhook.open"] = False
            self.store.append_webhook_event(job_id, count, event, fields, now, status=job.status)

    def repair(self, now: datetime) -> int:
        """Run :meth:`notify` on every job whose webhook is still open (its final status not recorded yet).

        Returns:
            How many jobs were looked at.
        """
        ids = self.store.open_webhook_job_ids()
        for job_id in ids:
            self.notify(job_id, now)
        return len(ids)
