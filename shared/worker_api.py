"""Request and response bodies of the worker API (``/internal/v1``), shared by server and workers.

Routes (all with ``Authorization: Bearer <worker token>``; a lease that is not the stage's current
one is answered 409 with a problem+json body whose ``code`` says why):

| method and path | body | answer |
|---|---|---|
| ``POST /internal/v1/jobs/{job_id}/stages/{stage}/claim`` | :class:`ClaimRequest` | 200 :class:`Lease`, or 409 |
| ``POST /internal/v1/jobs/{job_id}/stages/{stage}/heartbeat`` | :class:`Heartbeat` | 200 :class:`HeartbeatReply`, or 409 |
| ``GET /internal/v1/jobs/{job_id}/inputs/{name}`` (header ``X-Lease-Id``) | — | the file, streamed |
| ``PUT /internal/v1/jobs/{job_id}/stages/{stage}/artifacts/{name}`` (headers ``X-Lease-Id``, ``X-Content-SHA256``) | raw bytes, streamed | 201 :class:`ArtifactInfo`; 400 when the digest differs |
| ``POST /internal/v1/jobs/{job_id}/stages/{stage}/result`` | :class:`StageResult` | 200 :class:`ResultAck`, or 409 |
| ``POST /internal/v1/workers`` | :class:`WorkerAnnouncement` | 204 (a training worker says what it trains on) |
| ``POST /internal/v1/jobs/{job_id}/stages/{stage}/release`` | :class:`Release` | 204 (the stage is queued again), or 409 |

Input names: ``input`` (the uploaded video, whatever its extension) and any artifact of an earlier
stage (``sfm.tar``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from shared.capture.report import CaptureReport
from shared.messages import StageName
from shared.options.base import DeviceClass

# Why a worker call was refused with 409; the worker drops the work and acks the message.
ConflictCode = Literal["STALE_LEASE", "ALREADY_CLAIMED", "CANCELLED", "STAGE_FINISHED", "JOB_GONE"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkerAnnouncement(_Body):
    """A training worker's start-up notice: the server advertises the latest one's device (``/v1/capabilities``)."""

    worker_id: str = Field(min_length=1, max_length=200)
    stage: StageName
    device: DeviceClass = Field(description="'cuda' when the worker trains on a CUDA GPU, else 'cpu'")


class ClaimRequest(_Body):
    """A worker asks for the lease on a stage, for the message it received."""

    message_id: str
    attempt: int = Field(ge=1, description="the attempt number in the message")
    worker_id: str = Field(min_length=1, max_length=200)
    redelivered: bool = Field(
        default=False,
        description="the broker marked the message redelivered (informational: a live lease is never taken over)",
    )


class Lease(_Body):
    """The server grants a lease; ``attempt`` is the n-th grant of this stage."""

    lease_id: str
    expires_at: datetime
    attempt: int
    options: dict[str, Any] = Field(description="the stage's resolved options (preset + overrides)")
    heartbeat_s: float = Field(description="heartbeat at least this often")


class Heartbeat(_Body):
    """Progress from a worker; renews the lease."""

    lease_id: str
    progress: float = Field(ge=0, le=1)
    message: str = Field(default="", max_length=500)
    capture: CaptureReport | None = Field(
        default=None, description="the capture check, once the sfm stage knows it; recorded on the job as `capture`"
    )
    rate: float | None = Field(
        default=None,
        ge=0,
        description="the stage's smoothed progress rate, fraction per second (shared.eta.update_rate); "
        "None until measurable",
    )

    @model_serializer(mode="wrap")
    def _without_absent_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave ``capture`` and ``rate`` out unless set: such a heartbeat stays the body older servers accept."""
        data: dict[str, Any] = handler(self)
        for name in ("capture", "rate"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class HeartbeatReply(_Body):
    """The renewed lease, and whether the job was cancelled (the worker then stops)."""

    expires_at: datetime
    cancelled: bool = False


class ArtifactInfo(_Body):
    """A stored artifact."""

    name: str
    size: int
    sha256: str


class StageErrorBody(_Body):
    """A stage failure as a worker reports it."""

    code: str
    message: str
    retryable: bool
    details: dict[str, Any] = Field(default_factory=dict)


class StageResult(_Body):
    """The outcome of one attempt."""

    lease_id: str
    status: Literal["succeeded", "failed"]
    metrics: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list, description="names uploaded by this attempt")
    error: StageErrorBody | None = None


class Release(_Body):
    """A stopping worker gives its lease back unfinished; the stage is queued for the next worker."""

    lease_id: str


class ResultAck(_Body):
    """The server recorded the result; the worker may ack the message now."""

    recorded: bool = True
    retry_scheduled: bool = Field(default=False, description="a retryable failure will be re-published")
