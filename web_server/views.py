"""Stored jobs turned into public ones: queue positions, the deciding error, signed artifact URLs."""

from __future__ import annotations

from datetime import datetime

from shared.capture.report import CaptureReport
from shared.messages import STAGES
from shared.settings import Settings
from web_server.eta_history import StageEta, StageHistory
from web_server.models import (
    ArtifactPublic,
    ErrorPublic,
    JobPublic,
    StagePublic,
    StoredError,
    StoredFile,
    StoredJob,
    StoredStage,
    VideoPublic,
)
from web_server.orchestration import first_error
from web_server.queue_positions import QueuePositions
from web_server.signing import signed_query
from web_server.store import as_utc
from web_server.webhook_events import webhook_public


def job_files(job: StoredJob) -> list[StoredFile]:
    """The files a client may download: the input video and the artifacts of succeeded stages."""
    files = [job.input]
    for name in STAGES:
        stage = job.stages.get(name)
        if stage is not None and stage.status == "succeeded":
            files.extend(stage.artifacts)
    return files


def find_file(job: StoredJob, name: str) -> StoredFile | None:
    """The downloadable file called ``name``, or None."""
    return next((f for f in job_files(job) if f.name == name), None)


def _error_public(error: StoredError | None) -> ErrorPublic | None:
    return ErrorPublic(code=error.code, message=error.message, retryable=error.retryable) if error else None


def _stage_public(
    positions: QueuePositions, settings: Settings, name: str, stage: StoredStage, eta: StageEta
) -> StagePublic:
    return StagePublic(
        status=stage.status,
        progress=stage.progress,
        message=stage.message,
        attempt=stage.attempt,
        max_attempts=settings.max_attempts,
        worker_id=stage.worker_id,
        queue_position=positions.position(name, stage),
        queued_at=as_utc(stage.queued_at),
        started_at=as_utc(stage.started_at),
        finished_at=as_utc(stage.finished_at),
        heartbeat_at=as_utc(stage.heartbeat_at),
        next_attempt_at=as_utc(stage.retry_at) if stage.status == "queued" else None,
        rate=stage.rate if stage.status == "running" else None,
        eta_seconds=round(eta.seconds, 1),
        eta_basis=eta.basis,
        metrics=stage.metrics,
        error=_error_public(stage.error),
    )


def job_public(
    job: StoredJob, *, positions: QueuePositions, history: StageHistory, settings: Settings, now: datetime
) -> JobPublic:
    """The public view of a job.

    Args:
        job: the stored job.
        positions: the queue positions of its queued stages.
        history: earlier stages' measured durations, for the ETA (``eta_seconds``).
        settings: signing secret, URL lifetime, attempt limit, and the public base URL the artifact
            URLs start with (``settings.public_base_url``, never the request's ``Host``).
        now: the time the signed URLs are valid from and the ETA is estimated at.
    """
    base_url = settings.public_base_url
    eta = history.estimate(job, now)
    stages = {
        name: _stage_public(positions, settings, name, job.stages[name], eta.stages[name])
        for name in STAGES
        if name in job.stages
    }
    artifacts = []
    for f in job_files(job):
        query, expires = signed_query(settings.signing_secret, job.id, f.name, now, settings.signed_url_ttl_s)
        artifacts.append(
            ArtifactPublic(
                name=f.name,
                stage=f.stage,
                size=f.size,
                sha256=f.sha256,
                content_type=f.content_type,
                url=f"{base_url}/v1/jobs/{job.id}/artifacts/{f.name}?{query}",
                url_expires_at=expires,
            )
        )
    error = first_error(job)
    return JobPublic(
        id=job.id,
        name=job.name,
        status=job.status,
        methods=job.methods,
        preset=job.preset,
        created_at=as_utc(job.created_at),
        updated_at=as_utc(job.updated_at),
        finished_at=as_utc(job.finished_at),
        queue_position=stages["sfm"].queue_position if job.status == "queued" else None,
        error=_error_public(error),
        video=VideoPublic.model_validate({k: v for k, v in job.video.items() if k in VideoPublic.model_fields}),
        capture=None if job.capture is None else CaptureReport.model_validate(job.capture),
        eta_seconds=round(eta.seconds, 1),
        stages=stages,
        artifacts=artifacts,
        from_job=job.from_job,
        root_job=job.root_job,
        sfm_reused_from=job.sfm_reused_from,
        webhook=webhook_public(job.webhook),
    )
