"""The ``stage_timings`` collection: finished stages' measured costs, the ETA's history (:mod:`web_server.eta_history`)."""

from __future__ import annotations

from typing import Any

from web_server.store.base import Collections


class TimingQueries(Collections):
    """The ``stage_timings`` collection's reads and writes."""

    def record_stage_timing(self, timing: dict[str, Any]) -> None:
        """Keep one finished stage's measured cost (``job_id, stage, device, preset, work, seconds, ...``).

        One document per job and stage (a stage recorded again replaces its earlier figures).
        """
        self.stage_timings.replace_one({"job_id": timing["job_id"], "stage": timing["stage"]}, timing, upsert=True)

    def recent_stage_timings(self, stage: str, device: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` timings of ``stage`` on ``device``, newest first."""
        cursor = self.stage_timings.find({"stage": stage, "device": device}, {"_id": 0}).sort("finished_at", -1)
        return list(cursor.limit(limit))
