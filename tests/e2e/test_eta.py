"""The ETA on the real stack: the local stack (create_app, SecantusDB, the in-process broker, the real
workers as threads) runs a tiny job; its ``eta_seconds`` is there while it runs, falls, ends at 0, and
the next job's estimate is the first job's measured durations."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import tiny_options
from vid2scene.embedded_mongo import secantus_available
from vid2scene.local import LocalStack
from web_server.models import TERMINAL_STAGE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _seconds(stage: dict[str, Any]) -> float:
    started = datetime.fromisoformat(stage["started_at"])
    return (datetime.fromisoformat(stage["finished_at"]) - started).total_seconds()


def _follow(http: httpx.Client, job_id: str, timeout_s: float) -> list[dict[str, Any]]:
    """Snapshots of the job every 0.25 s until it ends."""
    snapshots: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}").json()
        snapshots.append(job)
        if job["status"] not in ("queued", "running"):
            return snapshots
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not end within {timeout_s} s: {snapshots[-1]}")


def _submit(http: httpx.Client, video: Path, options: str) -> dict[str, Any]:
    """Upload ``video``; returns the job as the 202 answer shows it (estimated at submission)."""
    with video.open("rb") as fh:
        response = http.post(
            "/v1/jobs",
            files={"video": (video.name, fh, "video/mp4")},
            data={"methods": "gs", "preset": "preview", "options": options},
        )
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_eta_is_reported_falls_to_zero_and_the_next_job_uses_the_measured_durations(
    e2e_video: Path, tmp_path: Path
) -> None:
    from tests.conftest import skip_or_fail

    if not secantus_available():
        skip_or_fail("no MongoDB-wire server: install the 'local' extra")
    # Training long enough (~15 s on a quiet 2-core machine) for several heartbeats to carry a rate: with
    # the tiny 80 steps the stage ended before the first rate (>= 2 s of progress, then a heartbeat).
    options = json.dumps(tiny_options(("gs",), iterations=600))
    with (
        LocalStack(tmp_path / "stack", stages=("sfm", "gs"), device="cpu", mongo_url=None) as stack,
        httpx.Client(base_url=stack.url, timeout=30) as http,
    ):
        first = _submit(http, e2e_video, options)["id"]
        snapshots = _follow(http, first, 420)
        assert snapshots[-1]["status"] == "succeeded", snapshots[-1]
        running = [s for s in snapshots if any(st["status"] not in TERMINAL_STAGE for st in s["stages"].values())]
        assert running, "never saw the job running"
        trace = [
            (s["eta_seconds"], {n: (st["status"], st["eta_seconds"]) for n, st in s["stages"].items()}) for s in running
        ]
        assert all(s["eta_seconds"] > 0 for s in running), trace
        measured = [
            s["stages"][name]
            for s in running
            for name in ("sfm", "gs")
            if s["stages"][name]["status"] == "running" and s["stages"][name]["eta_basis"] == "measured"
        ]
        assert measured, "no running stage was ever estimated from its worker's reported rate"
        assert all(stage["rate"] > 0 for stage in measured)
        falls = []  # within a stage, once measured, the estimate falls as the stage goes on
        for name in ("sfm", "gs"):
            seen = [
                s["stages"][name]["eta_seconds"]
                for s in running
                if s["stages"][name]["status"] == "running" and s["stages"][name]["eta_basis"] == "measured"
            ]
            if len(seen) >= 2:
                falls.append(seen[-1] < seen[0])
        assert all(falls), trace  # (a stage may pass from its prior to done between two snapshots)
        final = snapshots[-1]
        assert final["eta_seconds"] == 0
        assert {s["eta_seconds"] for s in final["stages"].values()} == {0}

        took = {name: _seconds(final["stages"][name]) for name in ("sfm", "gs")}
        job = _submit(http, e2e_video, options)  # the same video and options: the same work
        for name in ("sfm", "gs"):
            assert job["stages"][name]["eta_basis"] == "history", job["stages"][name]
            assert job["stages"][name]["eta_seconds"] == pytest.approx(took[name], abs=0.5)
        assert job["eta_seconds"] == pytest.approx(took["sfm"] + took["gs"], abs=1.0)
        assert http.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200
