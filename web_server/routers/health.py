"""``/healthz`` (alive), ``/readyz`` (MongoDB and broker reachable), ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from web_server.deps import MetricsDep, StoreDep, require_metrics_token
from web_server.models import Health
from web_server.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "a dependency is down"}})
def readyz(request: Request, store: StoreDep) -> JSONResponse:
    """Ready when MongoDB answers a ping and the broker is reachable."""
    checks: dict[str, str] = {}
    try:
        store.ping()
        checks["mongo"] = "ok"
    except Exception as exc:
        checks["mongo"] = f"unavailable: {type(exc).__name__}"
    checks["broker"] = "ok" if request.app.state.broker.ready() else "unavailable"
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(require_metrics_token)],
    responses={401: {"model": Problem, "description": "VID2SCENE_METRICS_TOKEN is set and was not sent"}},
)
def metrics(store: StoreDep, counters: MetricsDep) -> PlainTextResponse:
    """Prometheus text: jobs by status, stages by status, uploads, requests. Needs the metrics token when one is set."""
    return PlainTextResponse(counters.render(store), media_type="text/plain; version=0.0.4")
