"""The one settings class: every knob of every component, from ``VID2SCENE_*`` environment variables.

Secrets have development defaults; each component checks the secrets it uses with
:meth:`Settings.require_secrets`, which refuses the defaults unless ``mode`` is ``local`` (the
one-command all-in-one mode, bound to 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, FilePath, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "changethis"

Device = Literal["auto", "cpu", "cuda"]


def _parse_networks(value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of a comma-separated list (empty items skipped); ValueError names a bad item."""
    networks = []
    for item in (i.strip() for i in value.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"webhook_allow_networks: {item!r} is not a network ({exc})") from exc
    return networks


class Settings(BaseSettings):
    """vid2scene configuration. Each field is read from ``VID2SCENE_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="VID2SCENE_", extra="ignore", frozen=True)

    mode: Literal["local", "service"] = Field(
        default="service", description="'local' allows the development secrets below; 'service' refuses them"
    )
    # --- where things are ------------------------------------------------------------------------
    mongo_url: str = Field(default="mongodb://127.0.0.1:27017", description="MongoDB connection URL")
    mongo_db: str = Field(default="vid2scene", description="MongoDB database name")
    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/%2F", description="RabbitMQ URL, or 'memory://' (local mode)"
    )
    queue_prefix: str = Field(
        default="", pattern=r"^[A-Za-z0-9_.-]*$", description="prefix of exchange and queue names (test isolation)"
    )
    server_url: str = Field(default="http://127.0.0.1:8000", description="the web server, as workers reach it")
    data_dir: Path = Field(default=Path("./vid2scene-data"), description="scratch space for uploads and workers")
    # --- secrets ---------------------------------------------------------------------------------
    worker_token: str = Field(default=DEV_SECRET, description="bearer token workers present to /internal/v1")
    signing_secret: str = Field(default=DEV_SECRET, description="HMAC key that signs artifact download URLs")
    metrics_token: str = Field(
        default="", description="when set, /metrics needs 'Authorization: Bearer <it>'; empty: /metrics is open"
    )
    # --- web server ------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="address the web server binds")
    port: int = Field(default=8000, description="port the web server binds")
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the server's URL as clients reach it; absolute URLs the API returns start with it "
        "(default: http://HOST:PORT, with 127.0.0.1 for a wildcard HOST). Never taken from the request.",
    )
    mongo_timeout_ms: int = Field(
        default=2000, gt=0, description="MongoDB server selection and connect timeout; then 503 STORE_UNAVAILABLE"
    )
    openapi_internal: bool = Field(
        default=False, description="also list the /internal/v1 worker API in /openapi.json and /docs"
    )
    queue_snapshot_ms: int = Field(
        default=500, ge=0, description="queue positions come from a per-stage snapshot at most this old"
    )
    require_api_key: bool = Field(default=True, description="false only in local mode")
    max_upload_bytes: int = Field(default=4 * 1024**3, gt=0, description="largest accepted upload")
    max_video_frames: int = Field(
        default=36_000, gt=0, description="most frames an upload may have, read from its index (VIDEO_TOO_LONG)"
    )
    max_video_duration_s: float = Field(
        default=600.0, gt=0, description="longest video accepted, from its headers (VIDEO_TOO_LONG)"
    )
    max_video_pixel_rate: int = Field(
        default=7680 * 4320 * 30,
        gt=0,
        description="largest width × height × fps accepted (8K at 30 fps; INVALID_VIDEO)",
    )
    upload_idle_timeout_s: float = Field(
        default=30.0, gt=0, description="an upload whose client sends nothing for this long is dropped"
    )
    max_concurrent_uploads_per_key: int = Field(
        default=4, ge=1, description="uploads one API key may have in flight per server process (429 TOO_MANY_UPLOADS)"
    )
    max_runs_per_job: int = Field(
        default=10, ge=0, description="runs (POST /v1/jobs/{id}/runs) one uploaded job may have (409 RUN_LIMIT_REACHED)"
    )
    max_artifact_bytes: int = Field(
        default=16 * 1024**3, gt=0, description="largest artifact a worker may upload (413 ARTIFACT_TOO_LARGE)"
    )
    signed_url_ttl_s: int = Field(default=3600, gt=0, description="lifetime of a signed artifact URL")
    lease_s: float = Field(default=120.0, gt=0, description="a stage lease lasts this long without a heartbeat")
    max_attempts: int = Field(default=3, ge=1, description="attempts per stage before it fails for good")
    reaper_interval_s: float = Field(default=10.0, gt=0, description="how often expired leases are looked for")
    unclaimed_requeue_s: float = Field(
        default=600.0, gt=0, description="a queued stage nobody claimed for this long is published again"
    )
    retry_backoff_s: float = Field(default=5.0, ge=0, description="first backoff before a retried attempt")
    training_device: Device = Field(
        default="auto",
        description="what the server says its training workers use (/v1/capabilities, the default preset); "
        "auto: the device of the training worker that announced itself last",
    )
    publish_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="longest wait for the broker to take a stage request; one not taken is published by the reaper",
    )
    janitor_interval_s: float = Field(
        default=900.0, gt=0, description="how often crash leftovers (upload temp files, orphan files) are removed"
    )
    janitor_min_age_s: float = Field(
        default=3600.0,
        gt=0,
        description="a leftover is removed only when untouched this long (an upload in progress never is)",
    )
    # --- webhooks (see docs/api.md, "Webhooks") ------------------------------------------------
    webhook_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="connect/read/write timeout of one webhook delivery attempt"
    )
    webhook_max_attempts: int = Field(default=30, ge=1, description="attempts per webhook event before it is given up")
    webhook_max_age_s: float = Field(
        default=86_400.0, gt=0, description="an event not delivered this long after it was recorded is given up"
    )
    webhook_retry_base_s: float = Field(
        default=10.0, ge=0, description="backoff after a webhook's first failed attempt; doubled per attempt"
    )
    webhook_retry_max_s: float = Field(default=3600.0, ge=0, description="longest backoff between webhook attempts")
    webhook_poll_s: float = Field(default=1.0, gt=0, description="how often due webhook deliveries are looked for")
    webhook_concurrency: int = Field(default=8, ge=1, le=256, description="jobs whose webhooks are delivered at once")
    webhook_ca_file: FilePath | None = Field(
        default=None,
        description="PEM file of extra certificate authorities https webhooks may chain to (receivers on a "
        "private network with an internal CA); the public ones stay trusted",
    )
    webhook_allow_networks: str = Field(
        default="",
        description="comma-separated networks (e.g. '127.0.0.1/32,10.0.0.0/8') webhooks may target although "
        "they are loopback, private, link-local or otherwise not public; empty: public addresses only",
    )
    # --- workers ---------------------------------------------------------------------------------
    device: Device = Field(default="auto", description="compute device for training stages")
    heartbeat_s: float = Field(default=15.0, gt=0, description="how often a worker heartbeats its stage")
    stop_grace_s: float = Field(
        default=25.0,
        gt=0,
        le=30,
        description="a worker exits this long after SIGTERM at the latest; its message goes back to the queue",
    )
    worker_id: str | None = Field(default=None, description="defaults to hostname:pid")
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="CPU threads for training and rendering (default: the CPUs this process may use)",
    )

    @field_validator("webhook_allow_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        _parse_networks(value)
        return value

    @property
    def webhook_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``webhook_allow_networks`` parsed: the non-public networks webhooks may target."""
        return _parse_networks(self.webhook_allow_networks)

    @property
    def public_base_url(self) -> str:
        """The base of every absolute URL the API returns, without a trailing slash.

        ``public_url`` when set, else ``http://<host>:<port>`` of the bound address (``127.0.0.1`` for a
        wildcard host such as ``0.0.0.0``). Never derived from a request's ``Host`` header.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else "[::1]" if self.host == "::" else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def require_secrets(self, *names: str) -> Settings:
        """Check that the named secrets were set, unless in local mode; each component names the ones it uses.

        The web server needs ``worker_token`` and ``signing_secret``; a worker needs only
        ``worker_token``, so a worker on another machine never holds the URL-signing key.

        Args:
            names: field names of secrets, e.g. ``"worker_token"``.

        Returns:
            ``self``, for chaining.

        Raises:
            ValueError: a named secret still has its development default or is shorter than 16
                characters, outside local mode. The message names the environment variables.
        """
        if self.mode == "local":
            return self
        weak = [name for name in names if getattr(self, name) == DEV_SECRET or len(getattr(self, name)) < 16]
        if weak:
            variables = ", ".join(f"VID2SCENE_{name.upper()}" for name in weak)
            raise ValueError(
                f"{variables} must be set to a secret of at least 16 characters outside local mode "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return self
