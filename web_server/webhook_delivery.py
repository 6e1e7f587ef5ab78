"""Webhook delivery: the loop that sends each job's outbox in order, retrying with exponential backoff.

State lives in the job document only (``webhook``, see :mod:`web_server.webhook_events`), so a
restarted server carries on where the last one stopped. Every ``webhook_poll_s`` the loop looks for
jobs whose next delivery is due, takes each one's delivery lease (one sender per job, whatever the
number of server processes) and sends its oldest pending event; the next event is sent only once that
one is delivered or given up, so a receiver sees a job's events in order. An attempt resolves the
host, checks every address (:mod:`web_server.webhook_targets`), connects to the checked address,
signs the body with the key's current webhook secret and follows no redirect; https checks the
certificate against the URL's host name, trusting the public CAs and ``webhook_ca_file``. A 2xx answer delivers
the event; any other answer, a timeout or a connection error schedules the next attempt after
``min(webhook_retry_base_s · 2^(attempts−1), webhook_retry_max_s)``, until ``webhook_max_attempts``
attempts or ``webhook_max_age_s`` after the event was recorded; a refused address or a key without
a webhook secret gives the event up at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import certifi
import httpx
from starlette.concurrency import run_in_threadpool

from shared.backoff import backoff_delay_s
from shared.settings import Settings
from web_server.store import Store, as_utc, utcnow
from web_server.webhook_events import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    WebhookEvents,
    sign,
)
from web_server.webhook_targets import WebhookUrlError, check_addresses, parse_webhook_url, resolve

logger = logging.getLogger(__name__)

#: Events one lease sends before the job goes back to the queue (fairness between jobs).
MAX_EVENTS_PER_LEASE = 20


def tls_context(extra_ca_file: Path | None) -> ssl.SSLContext:
    """What https deliveries trust: the public CAs (certifi's bundle, as httpx by default) and ``extra_ca_file``.

    Certificates are checked against the URL's host name, although the connection goes to the address
    that was checked (the request's ``sni_hostname``).
    """
    context = ssl.create_default_context(cafile=certifi.where())
    if extra_ca_file is not None:
        context.load_verify_locations(cafile=str(extra_ca_file))
    return context


class Attempt:
    """What one delivery attempt found: the HTTP status or the error, and whether trying again may help."""

    def __init__(self, status: int | None = None, error: str | None = None, *, permanent: bool = False) -> None:
        self.status = status
        self.error = error
        self.permanent = permanent

    @property
    def delivered(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


class WebhookDelivery:
    """Sends due webhook events.

    Args:
        store: the database.
        settings: timeouts, retry schedule, concurrency and the allowed networks.
        client: the HTTP client (default: one without proxies from the environment); closed by :meth:`aclose`.
    """

    def __init__(self, store: Store, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.store = store
        self.settings = settings
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.webhook_timeout_s),
            follow_redirects=False,
            trust_env=False,
            verify=tls_context(settings.webhook_ca_file),
        )
        self.lease_s = 5 * settings.webhook_timeout_s + 5

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def deliver_due(self) -> int:
        """One pass: every job with a due event, ``webhook_concurrency`` at a time.

        Returns:
            How many attempts were made.
        """
        limit = self.settings.webhook_concurrency * 4
        ids = await run_in_threadpool(self.store.due_webhook_job_ids, utcnow(), limit)
        semaphore = asyncio.Semaphore(self.settings.webhook_concurrency)

        async def one(job_id: str) -> int:
            async with semaphore:
                try:
                    return await self.deliver_job(job_id)
                except Exception:
                    logger.exception(
                        "webhook delivery of job %s failed; the lease expires and it is tried again", job_id
                    )
                    return 0

        return sum(await asyncio.gather(*(one(job_id) for job_id in ids)))

    def _until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.lease_s)

    async def deliver_job(self, job_id: str) -> int:
        """Take the job's lease and send its pending events in order while they are due.

        Returns:
            How many attempts were made (0 when another sender holds the lease).
        """
        lease_id = uuid.uuid4().hex
        state = await run_in_threadpool(self.store.lease_webhook, job_id, lease_id, utcnow(), self._until())
        try:
            return await self._send_leased(job_id, lease_id, state)
        except asyncio.CancelledError:  # the server stops: the next one may send at once
            self.store.drop_webhook_lease(job_id, lease_id)
            raise

    async def _send_leased(self, job_id: str, lease_id: str, state: dict[str, Any] | None) -> int:
        """Send the due events of a job whose lease ``lease_id`` holds (``state``: its ``webhook``)."""
        attempts = 0
        while state is not None:
            events: list[dict[str, Any]] = state.get("events") or []
            index = next((i for i, e in enumerate(events) if e.get("state") == "pending"), None)
            now = utcnow()
            head = None if index is None else events[index]
            due = None if head is None else as_utc(head.get("next_attempt_at")) or now
            if head is None or due is None or due > now or attempts >= MAX_EVENTS_PER_LEASE:
                count = int(state.get("event_count", len(events)))
                if await run_in_threadpool(self.store.release_webhook, job_id, lease_id, count, due):
                    return attempts
            else:
                assert index is not None
                outcome = await self._attempt(state, head)
                attempts += 1
                record = self._outcome(head, outcome, utcnow())
                if not await run_in_threadpool(
                    self.store.record_webhook_attempt, job_id, lease_id, index, record, self._until()
                ):
                    return attempts  # the lease was lost (it expired and another sender took it)
            state = await run_in_threadpool(self.store.webhook_state, job_id, lease_id)
        return attempts

    def _outcome(self, event: dict[str, Any], attempt: Attempt, now: datetime) -> dict[str, Any]:
        """The event's fields after ``attempt``: delivered, given up, or the time of the next attempt."""
        record: dict[str, Any] = {"last_attempt_at": now, "last_status": attempt.status, "last_error": attempt.error}
        if attempt.delivered:
            return {**record, "state": "delivered", "delivered_at": now, "next_attempt_at": None}
        attempts = int(event.get("attempts", 0)) + 1
        deadline = as_utc(event["created_at"]) + timedelta(seconds=self.settings.webhook_max_age_s)
        if attempt.permanent or attempts >= self.settings.webhook_max_attempts or now >= deadline:
            return {**record, "state": "failed", "next_attempt_at": None}
        delay = backoff_delay_s(attempts, self.settings.webhook_retry_base_s, self.settings.webhook_retry_max_s)
        return {**record, "next_attempt_at": min(now + timedelta(seconds=delay), deadline)}

    async def _attempt(self, state: dict[str, Any], event: dict[str, Any]) -> Attempt:
        """POST one event to the job's URL; never raises."""
        secret = await run_in_threadpool(self.store.webhook_secret, str(state.get("api_key_id")))
        if not secret:
            return Attempt(error="the API key that created the job has no webhook secret", permanent=True)
        try:
            target = parse_webhook_url(str(state["url"]))
            try:
                addresses = await asyncio.wait_for(resolve(target.host, target.port), self.settings.webhook_timeout_s)
            except (OSError, TimeoutError, UnicodeError) as exc:
                return Attempt(error=f"{target.host} does not resolve ({exc or 'timeout'})")
            address = check_addresses(target.host, addresses, self.settings.webhook_networks)
        except WebhookUrlError as exc:
            return Attempt(error=exc.message, permanent=True)
        body = str(event["body"]).encode()
        ip_host = f"[{address}]" if address.version == 6 else str(address)
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        if ":" in target.host:
            host_header = f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
        headers = {
            "Host": host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: str(event["id"]),
            EVENT_TYPE_HEADER: str(event["type"]),
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        url = f"{target.scheme}://{ip_host}:{target.port}{target.target}"
        try:
            request = self.client.build_request("POST", url, content=body, headers=headers, extensions=extensions)
            response = await self.client.send(request, stream=True)
            await response.aclose()  # the status is all that counts; the body is never read
        except httpx.TimeoutException:
            return Attempt(error=f"timed out after {self.settings.webhook_timeout_s:g} s")
        except httpx.HTTPError as exc:
            return Attempt(error=f"{type(exc).__name__}: {exc}"[:300])
        if 200 <= response.status_code < 300:
            return Attempt(status=response.status_code)
        return Attempt(status=response.status_code, error=f"HTTP {response.status_code}")


async def run_webhooks(delivery: WebhookDelivery, events: WebhookEvents, repair_interval_s: float) -> None:
    """Deliver due events every ``webhook_poll_s``, and repair missed events every ``repair_interval_s``, forever."""
    loop = asyncio.get_running_loop()
    last_repair: float | None = None
    while True:
        try:
            if last_repair is None or loop.time() - last_repair >= repair_interval_s:
                last_repair = loop.time()
                await run_in_threadpool(events.repair, utcnow())
            await delivery.deliver_due()
        except Exception:
            logger.exception("webhook pass failed; trying again in %.1f s", delivery.settings.webhook_poll_s)
        await asyncio.sleep(delivery.settings.webhook_poll_s)
