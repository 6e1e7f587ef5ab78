"""The ETA of a job from its stored state and the measured durations of earlier jobs' stages.

The rules are the pure functions of :mod:`shared.eta`; this module feeds them. When a stage
succeeds, :meth:`StageHistory.record` stores its duration (claim to result), its work units and the
device class of the worker that ran it (from the worker's announcement, ``cpu`` when the worker did
not announce one: the ``sfm`` worker never does) in the ``stage_timings`` collection. Reading a job
then estimates every stage (:meth:`StageHistory.estimate`): finished ones 0, running ones from the
rate their worker reports blended with the prior, the others from the prior alone, on the device
class of the worker that last announced itself for that stage.

Timings and announcements are read at most every ``max_age_s`` (a snapshot shared by all requests,
as queue positions are); recording a timing drops the snapshot, so the next job read here sees it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.eta import (
    HISTORY_RUNS,
    EtaBasis,
    Timing,
    job_remaining_s,
    prior_seconds,
    running_remaining_s,
    split_duration,
    stage_cost,
    stage_work,
)
from shared.messages import STAGES, StageName
from web_server.models import TERMINAL_JOB, TERMINAL_STAGE, StoredJob, StoredStage
from web_server.store import Store, as_utc

#: How many timings of one stage and device are read: enough to find :data:`HISTORY_RUNS` of one preset.
_READ_TIMINGS = 10 * HISTORY_RUNS
#: The device class of a stage whose worker never announced one.
FALLBACK_DEVICE = "cpu"


@dataclass(frozen=True)
class StageEta:
    """One stage's estimate: seconds left and where the figure comes from."""

    seconds: float
    basis: EtaBasis


@dataclass(frozen=True)
class JobEta:
    """A job's estimate: seconds left overall and per stage."""

    seconds: float
    stages: Mapping[str, StageEta]


class StageHistory:
    """Measured stage durations, recorded and read through the store, with a shared snapshot (thread-safe).

    Args:
        store: the database.
        max_age_s: how long a snapshot of timings and worker announcements is reused.
    """

    def __init__(self, store: Store, max_age_s: float = 10.0) -> None:
        self._store = store
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._timings: dict[tuple[str, str], list[Timing]] = {}
        self._workers: dict[str, tuple[str, str]] | None = None
        self._taken = 0.0

    def invalidate(self) -> None:
        """Drop the snapshot; the next estimate reads the store again."""
        with self._lock:
            self._timings.clear()
            self._workers = None

    def _fresh(self) -> None:
        """Drop a snapshot older than ``max_age_s`` (call with the lock held)."""
        if time.monotonic() - self._taken > self._max_age_s:
            self._timings.clear()
            self._workers = None
            self._taken = time.monotonic()

    def _worker_devices(self) -> dict[str, tuple[str, str]]:
        with self._lock:
            self._fresh()
            if self._workers is None:
                self._workers = self._store.worker_devices()
            return self._workers

    def device_of(self, stage: str, worker_id: str | None) -> str:
        """The device class of ``worker_id`` as it announced it; without one, of the newest worker of ``stage``."""
        workers = self._worker_devices()
        if worker_id is not None and worker_id in workers:
            return workers[worker_id][1]
        return next((device for kind, device in workers.values() if kind == stage), FALLBACK_DEVICE)

    def timings(self, stage: str, device: str) -> list[Timing]:
        """The newest timings of ``stage`` on ``device``, newest first."""
        with self._lock:
            self._fresh()
            key = (stage, device)
            if key not in self._timings:
                docs = self._store.recent_stage_timings(stage, device, _READ_TIMINGS)
                self._timings[key] = [
                    Timing(str(d["preset"]), float(d.get("fixed_s", 0.0)), float(d["seconds_per_unit"])) for d in docs
                ]
            return self._timings[key]

    def record(self, job: StoredJob, stage: StageName) -> None:
        """Store the measured cost of ``job``'s succeeded ``stage`` (no-op without both start and end times)."""
        current = job.stages[stage]
        started, finished = as_utc(current.started_at), as_utc(current.finished_at)
        if started is None or finished is None:
            return
        seconds = max((finished - started).total_seconds(), 0.0)
        work = stage_work(stage, current.options, job.video)
        timing = split_duration(stage, seconds, work, job.preset)
        self._store.record_stage_timing(
            {
                "job_id": job.id,
                "stage": stage,
                "device": self.device_of(stage, current.worker_id),
                "preset": job.preset,
                "work": work,
                "seconds": seconds,
                "fixed_s": timing.fixed_s,
                "seconds_per_unit": timing.seconds_per_unit,
                "finished_at": finished,
            }
        )
        self.invalidate()

    def estimate(self, job: StoredJob, now: datetime) -> JobEta:
        """Seconds left of every stage of ``job`` and of the whole job, at ``now``."""
        names = [name for name in STAGES if name in job.stages]
        if job.status in TERMINAL_JOB:
            done: dict[str, StageEta] = {name: StageEta(0.0, "done") for name in names}
            return JobEta(0.0, done)
        stages: dict[str, StageEta] = {name: self._stage_eta(job, name, job.stages[name], now) for name in names}
        return JobEta(job_remaining_s({name: e.seconds for name, e in stages.items()}), stages)

    def _stage_eta(self, job: StoredJob, name: str, stage: StoredStage, now: datetime) -> StageEta:
        if stage.status in TERMINAL_STAGE:
            return StageEta(0.0, "done")
        worker = stage.worker_id if stage.status == "running" else None
        device = self.device_of(name, worker)
        fixed, per_unit, basis = stage_cost(name, device, job.preset, self.timings(name, device))
        prior = prior_seconds(stage_work(name, stage.options, job.video), fixed, per_unit)
        if stage.status == "running":
            started = as_utc(stage.started_at) or now
            reported = as_utc(stage.heartbeat_at) or started
            seconds, running_basis = running_remaining_s(
                stage.progress,
                stage.rate,
                (now - reported).total_seconds(),
                (now - started).total_seconds(),
                prior,
                basis,
            )
            return StageEta(seconds, running_basis)
        retry_at = as_utc(stage.retry_at)
        wait = max((retry_at - now).total_seconds(), 0.0) if retry_at is not None and stage.status == "queued" else 0.0
        return StageEta(prior + wait, basis)
