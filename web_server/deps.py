"""FastAPI dependencies as ``Annotated`` aliases: settings, store, orchestrator, queue positions, the caller, the worker."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.settings import Settings
from web_server.api_keys import key_id_for_token, owner_for_token
from web_server.eta_history import StageHistory
from web_server.metrics import Metrics
from web_server.orchestration import Orchestrator
from web_server.problems import ApiError
from web_server.queue_positions import QueuePositions
from web_server.store import Store
from web_server.upload_slots import UploadSlots

LOCAL_OWNER = "local"

_api_key_scheme = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="an API key")
_worker_scheme = HTTPBearer(auto_error=False, scheme_name="WorkerToken", description="the worker token")
_metrics_scheme = HTTPBearer(
    auto_error=False, scheme_name="MetricsToken", description="VID2SCENE_METRICS_TOKEN, when the server sets one"
)


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


def get_store(request: Request) -> Store:
    """The app's store."""
    return request.app.state.store


def get_orchestrator(request: Request) -> Orchestrator:
    """The app's orchestrator."""
    return request.app.state.orchestrator


def get_metrics(request: Request) -> Metrics:
    """The app's metrics."""
    return request.app.state.metrics


def get_queue_positions(request: Request) -> QueuePositions:
    """The app's queue-position snapshot."""
    return request.app.state.queue_positions


def get_stage_history(request: Request) -> StageHistory:
    """The app's measured stage durations (the ETA's history)."""
    return request.app.state.stage_history


def get_upload_slots(request: Request) -> UploadSlots:
    """The app's per-owner count of uploads in flight."""
    return request.app.state.upload_slots


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
OrchestratorDep = Annotated[Orchestrator, Depends(get_orchestrator)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
QueuePositionsDep = Annotated[QueuePositions, Depends(get_queue_positions)]
UploadSlotsDep = Annotated[UploadSlots, Depends(get_upload_slots)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key_scheme)]


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", detail, headers={"WWW-Authenticate": "Bearer"})


def owner_from_credentials(
    credentials: HTTPAuthorizationCredentials | None, settings: Settings, store: Store
) -> str | None:
    """The owner of a valid key; the local owner when keys are not required and none is given; else None."""
    if credentials is not None and credentials.credentials:
        return owner_for_token(store, credentials.credentials)
    if not settings.require_api_key:
        return LOCAL_OWNER
    return None


def get_owner(credentials: BearerDep, settings: SettingsDep, store: StoreDep) -> str:
    """The caller's owner name from ``Authorization: Bearer <api key>``; 401 without a valid key."""
    owner = owner_from_credentials(credentials, settings, store)
    if owner is None:
        raise _unauthorized("Send a valid API key as 'Authorization: Bearer <key>'.")
    return owner


def get_optional_owner(credentials: BearerDep, settings: SettingsDep, store: StoreDep) -> str | None:
    """The caller's owner when it sent a valid key (or keys are off); None otherwise (signed URLs)."""
    return owner_from_credentials(credentials, settings, store)


def get_api_key_id(credentials: BearerDep, store: StoreDep) -> str | None:
    """The id of the live API key the caller sent, or None (no key: keys are off for this request)."""
    if credentials is None or not credentials.credentials:
        return None
    return key_id_for_token(store, credentials.credentials)


def require_worker(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_worker_scheme)], settings: SettingsDep
) -> None:
    """401 unless the request carries the worker token."""
    token = credentials.credentials if credentials else ""
    if not hmac.compare_digest(token.encode(), settings.worker_token.encode()):
        raise _unauthorized("Send the worker token as 'Authorization: Bearer <token>'.")


def require_metrics_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_metrics_scheme)], settings: SettingsDep
) -> None:
    """401 unless ``VID2SCENE_METRICS_TOKEN`` is empty or the request carries it as a bearer token."""
    if not settings.metrics_token:
        return
    token = credentials.credentials if credentials else ""
    if not hmac.compare_digest(token.encode(), settings.metrics_token.encode()):
        raise _unauthorized("Send the metrics token as 'Authorization: Bearer <token>'.")


OwnerDep = Annotated[str, Depends(get_owner)]
OptionalOwnerDep = Annotated[str | None, Depends(get_optional_owner)]
ApiKeyIdDep = Annotated[str | None, Depends(get_api_key_id)]
