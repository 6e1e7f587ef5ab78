"""The FastAPI application: routers, problem+json errors, request metrics, bounded access logs, the reaper task."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from pymongo import MongoClient
from pymongo.database import Database
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.broker import Broker, make_broker
from shared.settings import Settings
from web_server import api_docs
from web_server.access_log import install_bounded_access_log
from web_server.eta_history import StageHistory
from web_server.janitor import Janitor, run_janitor
from web_server.metrics import Metrics
from web_server.orchestration import Orchestrator
from web_server.problems import install_problem_handlers
from web_server.queue_positions import QueuePositions
from web_server.routers import artifacts, capabilities, events, health, jobs, worker
from web_server.store import Store, connect, utcnow
from web_server.upload_slots import UploadSlots
from web_server.webhook_delivery import WebhookDelivery, run_webhooks
from web_server.webhook_events import WebhookEvents

logger = logging.getLogger(__name__)

#: How often SSE streams poll MongoDB for changes.
SSE_POLL_S = 0.5
#: Retries whose backoff is over are published at least this often, whatever the reaper interval.
RETRY_TICK_S = 1.0
UI_MODULE = "web_server.ui"


class RequestMetricsMiddleware:
    """Counts answered requests by method, route template and status (ASGI, streaming-safe)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            self.metrics.count_request(scope["method"], getattr(route, "path", None), status)


async def run_reaper(orchestrator: Orchestrator, interval_s: float) -> None:
    """Publish due retries every second and run a full reaper pass every ``interval_s``, forever."""
    tick = min(interval_s, RETRY_TICK_S)
    last_full = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            if loop.time() - last_full >= interval_s:
                last_full = loop.time()
                report = await run_in_threadpool(orchestrator.reap, utcnow())
                if report.requeued or report.worker_lost or report.published or report.settled:
                    logger.info("reaper: %s", report)
            else:
                await run_in_threadpool(orchestrator.publish_due_retries, utcnow())
        except Exception:
            logger.exception("reaper pass failed; trying again in %.1f s", tick)
        await asyncio.sleep(tick)


def _declare_queues(broker: Broker) -> None:
    """Declare the stage queues (idempotent); a broker down now is retried by publishes."""
    try:
        broker.declare()
    except Exception:
        logger.exception("declaring the stage queues failed; publishes will report it")


def _include_ui(app: FastAPI) -> None:
    """Mount the web page's router when the optional ``web_server.ui`` module exists."""
    if importlib.util.find_spec(UI_MODULE) is None:
        return
    app.include_router(importlib.import_module(UI_MODULE).router)


def create_app(settings: Settings, *, broker: Broker | None = None, db: Database | None = None) -> FastAPI:
    """Build the web server.

    Args:
        settings: the configuration.
        broker: publishes stage requests; default ``make_broker(settings.amqp_url, prefix=settings.queue_prefix,
            publish_retry_s=settings.publish_timeout_s)``, so that no request waits long for a broker that
            is down.
        db: the MongoDB database; default ``settings.mongo_db`` on ``settings.mongo_url``.

    Returns:
        The app. Its lifespan creates the indexes, declares the stage queues and runs the reaper, the
        janitor (:mod:`web_server.janitor`, its first pass at start-up) and the webhook deliveries
        (:mod:`web_server.webhook_delivery`, state in MongoDB only); a
        client or broker the app created itself is closed at shutdown. Raises ``ValueError`` when
        API keys are switched off, or a secret is left at its default, outside local mode.
    """
    settings.require_secrets("worker_token", "signing_secret")
    if not settings.require_api_key and settings.mode != "local":
        raise ValueError("VID2SCENE_REQUIRE_API_KEY=false is only allowed with VID2SCENE_MODE=local")
    owned: list[MongoClient[Any] | Broker] = []  # closed at shutdown
    if db is None:
        db = connect(settings.mongo_url, settings.mongo_db, timeout_ms=settings.mongo_timeout_ms)
        owned.append(db.client)
    if broker is None:
        broker = make_broker(
            settings.amqp_url, prefix=settings.queue_prefix, publish_retry_s=settings.publish_timeout_s
        )
        owned.append(broker)
    store = Store(db)
    webhook_events = WebhookEvents(store, settings)
    stage_history = StageHistory(store)
    orchestrator = Orchestrator(store, broker, settings, stage_history, on_change=webhook_events.notify)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(store.ensure_indexes)
        await run_in_threadpool(_declare_queues, broker)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        janitor = Janitor(store, settings.data_dir, settings.janitor_min_age_s)
        webhooks = WebhookDelivery(store, settings)
        tasks = [
            asyncio.create_task(run_reaper(orchestrator, settings.reaper_interval_s), name="reaper"),
            asyncio.create_task(run_janitor(janitor, settings.janitor_interval_s), name="janitor"),
            asyncio.create_task(run_webhooks(webhooks, webhook_events, settings.reaper_interval_s), name="webhooks"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await webhooks.aclose()
            for resource in owned:
                resource.close()

    app = FastAPI(
        title="vid2scene",
        version="0.1.0",
        description="Upload a video; get camera poses, Gaussian splats, a TensoRF field and a flythrough.",
        lifespan=lifespan,
        docs_url=None,  # api_docs serves /docs without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.broker = broker
    app.state.orchestrator = orchestrator
    app.state.metrics = Metrics()
    app.state.queue_positions = QueuePositions(store, settings.queue_snapshot_ms / 1000)
    app.state.stage_history = stage_history
    app.state.upload_slots = UploadSlots(settings.max_concurrent_uploads_per_key)
    app.state.sse_poll_s = SSE_POLL_S
    install_problem_handlers(app)
    install_bounded_access_log()
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics)
    for module in (jobs, artifacts, events, capabilities, health, api_docs):
        app.include_router(module.router)
    # The worker API is for our workers only: left out of the public schema unless asked for.
    app.include_router(worker.router, include_in_schema=settings.openapi_internal)
    _include_ui(app)
    return app
