"""Queue positions from a shared per-stage snapshot, so that reading a job costs one store round trip.

A stage's position is 1 + the number of stages of the same kind queued before it (in active jobs).
Counting that per request doubled the cost of ``GET /v1/jobs/{id}`` and multiplied it by the page
size for lists. Instead one query reads the ``queued_at`` of every queued stage into sorted lists,
and positions are binary searches in them. The snapshot is reused for at most
``VID2SCENE_QUEUE_SNAPSHOT_MS``; it is read again sooner when a stage asked about was queued after
it was taken (a job just submitted or retried) and when this server changes a queue (a claim, a
cancel, a delete: :meth:`QueuePositions.invalidate`). So a position is exact for changes made through
this process and at most that old for changes made elsewhere.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from datetime import datetime

from web_server.models import StoredStage
from web_server.store import Store, as_utc, utcnow


class QueuePositions:
    """Queue positions of stages, from a snapshot shared by all requests (thread-safe).

    Args:
        store: the jobs collection's store.
        max_age_s: how long a snapshot is reused; 0 reads one for every position asked.
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(self, store: Store, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._queued: dict[str, list[datetime]] = {}
        self._taken_wall: datetime | None = None
        self._taken_mono = 0.0

    def invalidate(self) -> None:
        """Drop the snapshot; the next position reads a new one."""
        with self._lock:
            self._taken_wall = None

    def position(self, stage_name: str, stage: StoredStage) -> int | None:
        """1 + the number of ``stage_name`` stages queued before this one; None unless it is queued."""
        queued_at = as_utc(stage.queued_at)
        if stage.status != "queued" or queued_at is None:
            return None
        queued_at = queued_at.replace(microsecond=queued_at.microsecond // 1000 * 1000)  # BSON keeps milliseconds
        queued = self._snapshot(queued_at).get(stage_name, [])
        return bisect.bisect_left(queued, queued_at) + 1

    def _snapshot(self, needed_at: datetime) -> dict[str, list[datetime]]:
        with self._lock:
            fresh = (
                self._taken_wall is not None
                and needed_at <= self._taken_wall
                and self._clock() - self._taken_mono <= self._max_age_s
            )
            if not fresh:
                self._taken_mono, self._taken_wall = self._clock(), utcnow()
                self._queued = self._store.queued_stage_times()
            return self._queued
