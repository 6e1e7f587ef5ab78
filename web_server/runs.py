"""Runs: new training stages on a finished job's stored input and SfM result (``POST /v1/jobs/{id}/runs``).

A run is a job of its own (own id, status, stages, artifacts, events, cancel, delete), created
without an upload: its ``input`` is the source job's stored video, and its ``sfm`` stage is the
source's result, written ``succeeded`` with the source's files, unless the run changes the SfM
options, in which case ``sfm`` runs again from the stored video. Every run of a capture names the
uploaded job as ``root_job``; ``GET /v1/jobs/{root}/runs`` lists the family side by side.

The files a run borrows from other jobs are listed in its ``shared_file_ids``: deleting the source
keeps them (``Orchestrator.delete``) and the janitor does not take them while a run references them.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from shared.messages import STAGES, StageName
from shared.options import OPTIONS_BY_STAGE, PresetName, resolve_options
from shared.settings import Settings
from web_server.intake import replayed
from web_server.job_form import canonical_sha256, check_option_stages, invalid_options
from web_server.models import ACTIVE_JOB, RunCreate, StoredJob, StoredStage
from web_server.orchestration import Orchestrator
from web_server.problems import ApiError
from web_server.store import Store

logger = logging.getLogger(__name__)


def check_source(job: StoredJob) -> None:
    """Refuse a run from a job that has no SfM result to start from.

    Raises:
        ApiError: 409 ``JOB_NOT_FINISHED`` while the job is queued or running; 409 ``NO_SFM_RESULT``
            when its SfM stage did not succeed (it failed, or the job was cancelled before it ended).
    """
    if job.status in ACTIVE_JOB:
        raise ApiError(
            409,
            "JOB_NOT_FINISHED",
            f"Job {job.id} is still {job.status}; start a run once it has ended (or cancel it first).",
        )
    sfm = job.stages.get("sfm")
    if sfm is None or sfm.status != "succeeded":
        state = "not run" if sfm is None else sfm.status
        raise ApiError(
            409,
            "NO_SFM_RESULT",
            f"Job {job.id} has no structure-from-motion result to start from (its sfm stage {state}); "
            "upload the video again as a new job.",
        )


def resolve_run_options(
    source: StoredJob, run: RunCreate, preset: PresetName
) -> tuple[dict[str, dict[str, Any]], bool]:
    """Every stage's resolved options for a run, and whether the source's SfM result is reused.

    SfM options are the source's own with ``run.options["sfm"]`` on top (the preset does not change
    them), so a run that names no SfM option, or only values the source already had, reuses the
    source's result. Training stages get ``preset`` (the run's, by default the source's) with their overrides.

    Raises:
        ApiError: 422 ``INVALID_OPTIONS`` for options of stages the run does not have, or refused values.
    """
    stages: list[StageName] = ["sfm", *run.methods]
    check_option_stages(run.options, stages)
    resolved: dict[str, dict[str, Any]] = {}
    source_sfm = source.stages["sfm"].options
    for stage in stages:
        model = OPTIONS_BY_STAGE[stage]
        try:
            if stage == "sfm":
                options = model.model_validate({**source_sfm, **run.options.get("sfm", {})})
            else:
                options = resolve_options(stage, preset, run.options.get(stage))
        except ValueError as exc:
            raise invalid_options(stage, exc) from exc
        resolved[stage] = options.model_dump(mode="json")
    return resolved, resolved["sfm"] == _as_dumped(source_sfm)


def _as_dumped(sfm_options: dict[str, Any]) -> dict[str, Any]:
    """The source's stored SfM options as the model dumps them (fields added since it ran get defaults)."""
    return OPTIONS_BY_STAGE["sfm"].model_validate(sfm_options).model_dump(mode="json")


def run_fingerprint(source_id: str, run: RunCreate, preset: str) -> str:
    """The SHA-256 (hex) a run's ``Idempotency-Key`` is bound to: the source and the validated body."""
    return canonical_sha256(
        {"from_job": source_id, "methods": run.methods, "preset": preset, "name": run.name, "options": run.options}
    )


def run_document(
    source: StoredJob,
    run: RunCreate,
    resolved: dict[str, dict[str, Any]],
    reuse_sfm: bool,
    *,
    preset: PresetName,
    owner: str,
    fingerprint: str,
    idempotency_key: str | None,
    now: datetime,
) -> StoredJob:
    """The new run's job: the source's input, and its SfM stage reused or ``pending``.

    Args:
        source: the finished job the run starts from.
        run: the request.
        resolved: every stage's resolved options (:func:`resolve_run_options`).
        reuse_sfm: whether the SfM stage is the source's result.
        preset: the run's preset (the request's, by default the source's).
        owner: the caller (the source's owner).
        fingerprint: :func:`run_fingerprint` of the request.
        idempotency_key: the request's ``Idempotency-Key``, if any.
        now: the creation time.
    """
    stages = {stage: StoredStage(options=resolved[stage]) for stage in STAGES if stage in resolved}
    shared = [source.input.file_id]
    if reuse_sfm:
        sfm = source.stages["sfm"]
        shared.extend(a.file_id for a in sfm.artifacts)
        stages["sfm"] = StoredStage(
            status="succeeded",
            options=sfm.options,
            progress=1.0,
            message=f"reused the result of job {source.id}",
            finished_at=now,
            metrics=sfm.metrics,
            artifacts=list(sfm.artifacts),
        )
    return StoredJob.model_validate(
        {
            "_id": uuid.uuid4().hex,
            "owner": owner,
            "name": run.name if run.name is not None else source.name,
            "methods": run.methods,
            "preset": preset,
            "request_sha256": fingerprint,
            "idempotency_key": idempotency_key or None,
            "status": "queued",
            "created_at": now,
            "updated_at": now,
            "input": source.input,
            "video": source.video,
            "capture": source.capture if reuse_sfm else None,
            "stages": stages,
            "from_job": source.id,
            "root_job": source.family_root,
            "sfm_reused_from": (source.sfm_reused_from or source.id) if reuse_sfm else None,
            "shared_file_ids": shared,
        }
    )


def start_run(
    store: Store,
    orchestrator: Orchestrator,
    settings: Settings,
    source: StoredJob,
    run: RunCreate,
    *,
    owner: str,
    idempotency_key: str | None,
    now: datetime,
) -> StoredJob:
    """Create a run of ``source`` and queue its first stages (the training stages, or ``sfm`` again).

    A repeated ``Idempotency-Key`` with the same request returns the first run; with another one
    it is 422 ``IDEMPOTENCY_KEY_REUSED``.

    Raises:
        ApiError: 409 ``JOB_NOT_FINISHED`` / ``NO_SFM_RESULT`` (:func:`check_source`), 409
            ``RUN_LIMIT_REACHED`` when the uploaded job already has ``settings.max_runs_per_job`` runs,
            422 ``INVALID_OPTIONS`` / ``IDEMPOTENCY_KEY_REUSED``.
    """
    preset = run.preset or source.preset
    fingerprint = run_fingerprint(source.id, run, preset)
    if idempotency_key and (first := store.find_job_by_idempotency_key(owner, idempotency_key)) is not None:
        return replayed(first, fingerprint, unfingerprinted_matches=False)
    check_source(source)
    resolved, reuse_sfm = resolve_run_options(source, run, preset)
    root = source.family_root
    limit = settings.max_runs_per_job
    if store.count_runs(root) >= limit:
        raise _limit_reached(root, limit)
    job = run_document(
        source,
        run,
        resolved,
        reuse_sfm,
        preset=preset,
        owner=owner,
        fingerprint=fingerprint,
        idempotency_key=idempotency_key,
        now=now,
    )
    try:
        orchestrator.insert(job, now)
    except DuplicateKeyError:  # a concurrent request with the same key won the race
        first = store.find_job_by_idempotency_key(owner, idempotency_key)
        if first is None:
            raise
        return replayed(first, fingerprint, unfingerprinted_matches=False)
    if store.count_runs(root) > limit:  # concurrent runs passed the check together: this one yields
        orchestrator.delete(job.id, now)
        raise _limit_reached(root, limit)
    job = orchestrator.queue_first(job.id, list(run.methods) if reuse_sfm else ["sfm"], now)
    logger.info(
        "run %s of job %s for %s (%s, sfm %s)",
        job.id,
        source.id,
        owner,
        ",".join(run.methods),
        "reused" if reuse_sfm else "again",
    )
    return job


def _limit_reached(root: str, limit: int) -> ApiError:
    return ApiError(
        409,
        "RUN_LIMIT_REACHED",
        f"Job {root} already has {limit} runs, the most a job may have (VID2SCENE_MAX_RUNS_PER_JOB); "
        "delete a run you no longer need, or upload the video again as a new job.",
    )
