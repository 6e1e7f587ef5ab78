"""The one settings class: every knob of every component, from ``VID2SCENE_*`` environment variables.

Secrets have development defaults; each component checks the secrets it uses with
:meth:`Settings.require_secrets`, which refuses the defaults unless ``mode`` is ``local`` (the
one-command all-in-one mode, bound to 127.0.0.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "changethis"

Device = Literal["auto", "cpu", "cuda"]


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
    # --- web server ------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="address the web server binds")
    port: int = Field(default=8000, description="port the web server binds")
    require_api_key: bool = Field(default=True, description="false only in local mode")
    max_upload_bytes: int = Field(default=4 * 1024**3, gt=0, description="largest accepted upload")
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
