"""The server's data models, kept apart by role (as in the FastAPI full-stack template):

- *stored* models (``Stored*``): documents in MongoDB's ``jobs`` and ``api_keys`` collections;
- *input* models (``*Create``): what a client submits;
- *public* models (``*Public``): what the API answers; nothing internal (leases, file ids) leaks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.capture.report import CaptureReport
from shared.eta import EtaBasis
from shared.messages import StageName
from shared.options.base import PresetName
from web_server.webhook_targets import MAX_URL_LENGTH

JobStatus = Literal["queued", "running", "succeeded", "partial", "failed", "cancelled"]
StageStatus = Literal["pending", "queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "partial", "failed", "cancelled")
STAGE_STATUSES: tuple[StageStatus, ...] = ("pending", "queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_JOB: frozenset[str] = frozenset({"succeeded", "partial", "failed", "cancelled"})
#: Jobs whose stages may still change (every status but the terminal ones).
ACTIVE_JOB: tuple[JobStatus, ...] = ("queued", "running")
TERMINAL_STAGE: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


# --- stored ---------------------------------------------------------------------------------------
class _Stored(BaseModel):
    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True, populate_by_name=True)


class StoredError(_Stored):
    """A stage error: ``{code, message, retryable}`` plus machine-readable details."""

    code: str
    message: str
    retryable: bool = False
    details: dict[str, Any] = Field(default_factory=dict)


class StoredFile(_Stored):
    """A file in the GridFS bucket that belongs to a job (the input video or an artifact)."""

    name: str
    stage: str = Field(description="'upload' for the input video, else the stage that wrote it")
    file_id: Any = Field(description="the GridFS file id")
    size: int
    sha256: str
    content_type: str
    created_at: datetime


class StoredStage(_Stored):
    """One requested stage of a job, with its lease and attempt bookkeeping."""

    status: StageStatus = "pending"
    options: dict[str, Any] = Field(default_factory=dict, description="resolved options (preset + overrides)")
    progress: float = 0.0
    rate: float | None = Field(default=None, description="the worker's smoothed progress rate, fraction per second")
    message: str = ""
    attempt: int = Field(default=0, description="leases granted so far; the n-th grant is attempt n")
    worker_id: str | None = None
    lease_id: str | None = None
    lease_expires_at: datetime | None = None
    message_id: str | None = Field(default=None, description="the message the current lease was claimed for")
    published_message_id: str | None = Field(default=None, description="the last StageRequest published")
    unpublished: bool = Field(
        default=False, description="the broker did not take that request; the reaper publishes it again"
    )
    queued_at: datetime | None = None
    retry_at: datetime | None = Field(default=None, description="a retry waits for its backoff until then")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: StoredError | None = None
    last_error: StoredError | None = Field(default=None, description="why the previous attempt ended")
    artifacts: list[StoredFile] = Field(default_factory=list)


class StoredJob(_Stored):
    """A job document in the ``jobs`` collection."""

    id: str = Field(alias="_id")
    owner: str
    name: str | None = None
    methods: list[StageName]
    preset: PresetName
    status: JobStatus
    version: int = Field(default=0, description="incremented by every write; SSE compares it")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    idempotency_key: str | None = None
    request_sha256: str | None = Field(
        default=None, description="fingerprint of the creating request; a replayed Idempotency-Key must match it"
    )
    input: StoredFile
    video: dict[str, Any] = Field(default_factory=dict, description="the probe of the input video")
    capture: dict[str, Any] | None = Field(default=None, description="the capture check, from the sfm stage")
    stages: dict[StageName, StoredStage]
    from_job: str | None = Field(default=None, description="a run: the job whose input and SfM result it started from")
    root_job: str | None = Field(default=None, description="a run: the uploaded job its family of runs started from")
    sfm_reused_from: str | None = Field(default=None, description="a run whose sfm stage is the source's result")
    shared_file_ids: list[Any] = Field(
        default_factory=list, description="a run: other jobs' files it references (kept while it exists)"
    )
    webhook: dict[str, Any] | None = Field(
        default=None,
        description="the webhook URL, the id of the API key whose secret signs it, and the outbox "
        "(web_server.webhook_events)",
    )

    @property
    def family_root(self) -> str:
        """The uploaded job of this job's family of runs: ``root_job`` for a run, the job itself otherwise."""
        return self.root_job or self.id


class StoredApiKey(_Stored):
    """An API key; only the SHA-256 of the token is stored."""

    id: str = Field(alias="_id")
    owner: str
    token_sha256: str
    created_at: datetime
    revoked_at: datetime | None = None
    webhook_secret: str | None = Field(default=None, description="signs the webhooks of the key's jobs")


# --- input ----------------------------------------------------------------------------------------
class JobCreate(BaseModel):
    """The form fields of ``POST /v1/jobs`` (the ``video`` file part aside)."""

    model_config = ConfigDict(extra="forbid")

    methods: list[Literal["gs", "nerf"]] = Field(min_length=1, description="training stages to run after sfm")
    preset: PresetName = "standard"
    name: str | None = Field(default=None, max_length=200)
    options: dict[StageName, dict[str, Any]] = Field(default_factory=dict)
    webhook_url: str | None = Field(
        default=None, max_length=MAX_URL_LENGTH, description="http(s) URL that receives the job's signed events"
    )


class RunCreate(BaseModel):
    """The JSON body of ``POST /v1/jobs/{id}/runs``: what the new run trains, on the job's stored input."""

    model_config = ConfigDict(extra="forbid")

    methods: list[Literal["gs", "nerf"]] = Field(min_length=1, description="training stages to run")
    preset: PresetName | None = Field(default=None, description="default: the source job's preset")
    name: str | None = Field(default=None, max_length=200)
    options: dict[StageName, dict[str, Any]] = Field(
        default_factory=dict,
        description="per-stage overrides; sfm overrides apply to the source's sfm options and, when they change "
        "them, run SfM again from the stored input",
    )


# --- public ---------------------------------------------------------------------------------------
class ErrorPublic(BaseModel):
    """Why a stage failed."""

    code: str
    message: str
    retryable: bool


class StagePublic(BaseModel):
    """A stage as a client sees it."""

    status: StageStatus
    progress: float
    message: str
    attempt: int
    max_attempts: int
    worker_id: str | None
    queue_position: int | None = Field(description="1 = next to be picked up; only while queued")
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    next_attempt_at: datetime | None = Field(description="when a retry will be queued, while it waits its backoff")
    rate: float | None = Field(
        default=None, description="the measured progress rate while running, fraction per second (smoothed)"
    )
    eta_seconds: float = Field(
        default=0.0,
        ge=0,
        description="estimated seconds until this stage is done; 0 once it finished (succeeded, failed or cancelled)",
    )
    eta_basis: EtaBasis = Field(
        default="done",
        description="where eta_seconds comes from: 'measured' (this run's rate blended with the prior), "
        "'history' (earlier runs on the same device class), 'default' (no history yet), 'done'",
    )
    metrics: dict[str, Any]
    error: ErrorPublic | None


class ArtifactPublic(BaseModel):
    """A downloadable file with a signed URL that works without the ``Authorization`` header."""

    name: str
    stage: str
    size: int
    sha256: str
    content_type: str
    url: str
    url_expires_at: datetime


class VideoPublic(BaseModel):
    """What the server detected in the uploaded video."""

    container: str | None = None
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    frame_count: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    size_bytes: int | None = None


WebhookEventState = Literal["pending", "delivered", "failed"]


class WebhookEventPublic(BaseModel):
    """One event sent (or to be sent) to the job's webhook URL, with its delivery record."""

    id: str = Field(description="the Vid2Scene-Event-Id header and the body's id (deduplicate on it)")
    type: Literal["job.status_changed", "job.capture_checked"]
    created_at: datetime
    state: WebhookEventState = Field(description="pending (to be tried), delivered (2xx), failed (given up)")
    attempts: int
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="the HTTP status of the last attempt; null when none came back")
    last_error: str | None = Field(description="why the last attempt did not deliver the event")
    next_attempt_at: datetime | None = Field(description="when the next attempt is due, while pending")
    delivered_at: datetime | None


class WebhookPublic(BaseModel):
    """The job's webhook: its URL and the events in the order they are delivered."""

    url: str
    events: list[WebhookEventPublic]


class JobPublic(BaseModel):
    """A job: its status, stages, error and artifacts."""

    id: str
    name: str | None
    status: JobStatus
    methods: list[StageName]
    preset: PresetName
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    queue_position: int | None = Field(description="the sfm stage's place in its queue while the job is queued")
    error: ErrorPublic | None = Field(description="the error that failed the job (the first failed stage's)")
    video: VideoPublic
    capture: CaptureReport | None = Field(
        default=None, description="the capture check (verdict, figures, advice) once the sfm stage has run it"
    )
    eta_seconds: float = Field(
        default=0.0,
        ge=0,
        description="estimated seconds until the job ends: sfm's remaining time plus the longest training stage's "
        "(they run side by side); 0 once the job ended. Queue waits are not included",
    )
    stages: dict[StageName, StagePublic]
    artifacts: list[ArtifactPublic]
    from_job: str | None = Field(default=None, description="a run: the job it was started from (else null)")
    root_job: str | None = Field(
        default=None, description="a run: the uploaded job of its family (GET /v1/jobs/{root_job}/runs lists them all)"
    )
    sfm_reused_from: str | None = Field(
        default=None, description="a run whose SfM result is that job's, reused without running SfM again"
    )
    webhook: WebhookPublic | None = Field(
        default=None, description="the webhook URL and each event's delivery (attempts, last status); null without one"
    )


class JobList(BaseModel):
    """One page of jobs, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[JobPublic]
    next_cursor: str | None


class RunList(BaseModel):
    """The runs of one capture: the uploaded job first, then every run started from it or its runs, oldest first."""

    root_job: str = Field(description="the uploaded job the runs share their input with")
    max_runs: int = Field(description="how many runs a job may have besides itself (VID2SCENE_MAX_RUNS_PER_JOB)")
    items: list[JobPublic]


class ApiKeyPublic(BaseModel):
    """An API key as listed (never the token)."""

    id: str
    owner: str
    created_at: datetime
    revoked_at: datetime | None


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class Capabilities(BaseModel):
    """What this server's training workers run on, and the preset a job gets when it names none."""

    training_device: Literal["cuda", "cpu", "unknown"] = Field(
        description="'cuda' or 'cpu' as configured or as the latest training worker announced; 'unknown' before any"
    )
    default_preset: PresetName = Field(description="the preset of a job uploaded without one")
    reason: str = Field(description="why that preset, in a sentence for the user")
    presets: list[PresetName] = Field(description="every preset a job may name")
    methods: list[Literal["gs", "nerf"]] = Field(description="the training methods a job may ask for")
