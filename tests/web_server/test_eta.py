"""The job's ETA through the API: defaults, the reported rate, recorded history, the worker's device, finished jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.eta import DEFAULT_FIXED_S, DEFAULT_SECONDS_PER_UNIT, running_remaining_s, stage_work
from shared.options.base import PresetName
from tests.web_server.conftest import WORKER_TOKEN, FakeWorker, Server
from web_server.store import utcnow

WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}
SFM_FILES = {"sfm.tar": b"tar", "report-sfm.json": b"{}"}


def _job(server: Server, job_id: str) -> dict[str, Any]:
    response = server.client.get(f"/v1/jobs/{job_id}", headers=server.auth())
    assert response.status_code == 200, response.text
    return response.json()


def _stored(server: Server, job_id: str) -> dict[str, Any]:
    doc = server.db["jobs"].find_one({"_id": job_id})
    assert doc is not None
    return doc


def _work(server: Server, job_id: str, stage: str) -> float:
    doc = _stored(server, job_id)
    return stage_work(stage, doc["stages"][stage]["options"], doc.get("video", {}))


def _default(server: Server, job_id: str, stage: str, device: str) -> float:
    """The default prior of a stage: fixed seconds + work × the default seconds per unit."""
    return DEFAULT_FIXED_S[stage] + _work(server, job_id, stage) * DEFAULT_SECONDS_PER_UNIT[stage][device]


def _heartbeat(worker: FakeWorker, request: Any, lease_id: str, progress: float, rate: float | None) -> Any:
    body: dict[str, Any] = {"lease_id": lease_id, "progress": progress, "message": "working"}
    if rate is not None:
        body["rate"] = rate
    return worker.server.client.post(worker.url(request, "heartbeat"), json=body, headers=worker.headers)


def test_without_history_every_stage_has_the_default_estimate(server: Server, tiny_video: bytes) -> None:
    job_id = server.submit(tiny_video, methods="gs,nerf", preset="preview").json()["id"]
    job = _job(server, job_id)
    expected = {s: _default(server, job_id, s, "cpu") for s in ("sfm", "gs", "nerf")}
    for name, seconds in expected.items():
        assert job["stages"][name]["eta_basis"] == "default"
        assert job["stages"][name]["eta_seconds"] == pytest.approx(seconds, abs=0.06)
    assert job["eta_seconds"] == pytest.approx(expected["sfm"] + max(expected["gs"], expected["nerf"]), abs=0.11)


def test_a_running_stage_is_estimated_from_the_rate_its_worker_reports(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job_id = server.submit(tiny_video, methods="gs", preset="preview").json()["id"]
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    assert _heartbeat(worker, sfm, lease_id, 0.4, None).status_code == 200  # an older worker: no rate
    job = _job(server, job_id)
    prior = _default(server, job_id, "sfm", "cpu")
    assert job["stages"]["sfm"]["eta_basis"] == "default"
    assert job["stages"]["sfm"]["eta_seconds"] == pytest.approx(prior, abs=1.0)  # the prior's time left

    assert _heartbeat(worker, sfm, lease_id, 0.5, 0.001).status_code == 200
    job = _job(server, job_id)
    sfm_eta = job["stages"]["sfm"]
    assert sfm_eta["eta_basis"] == "measured" and sfm_eta["rate"] == 0.001
    # (1 − 0.5) / 0.001 = 500 s measured, blended with the prior; a moment has passed since the beat
    expected, _ = running_remaining_s(0.5, 0.001, 0.0, 0.0, prior, "default")
    assert sfm_eta["eta_seconds"] == pytest.approx(expected, rel=0.02)
    assert sfm_eta["eta_seconds"] > 400
    assert job["eta_seconds"] == pytest.approx(sfm_eta["eta_seconds"] + job["stages"]["gs"]["eta_seconds"], abs=0.11)
    again = _job(server, job_id)["stages"]["sfm"]["eta_seconds"]
    assert again <= sfm_eta["eta_seconds"]  # it falls between heartbeats, never rises without news


def _run_sfm_for(server: Server, worker: FakeWorker, seconds: float) -> str:
    """Claim the newest sfm request, back-date its start by ``seconds`` and report success."""
    sfm = server.broker.requests_for("sfm")[-1]
    lease_id = worker.claim(sfm).json()["lease_id"]
    started = utcnow() - timedelta(seconds=seconds)
    server.db["jobs"].update_one({"_id": sfm.job_id}, {"$set": {"stages.sfm.started_at": started}})
    for name, data in SFM_FILES.items():
        assert worker.upload(sfm, lease_id, name, data).status_code == 201
    assert worker.succeed(sfm, lease_id, list(SFM_FILES)).status_code == 200
    return sfm.job_id


@pytest.mark.parametrize("preset", ["preview", "standard"])
def test_a_finished_stage_is_recorded_and_the_next_job_uses_its_rate(
    server: Server, worker: FakeWorker, tiny_video: bytes, preset: PresetName
) -> None:
    first = server.submit(tiny_video, methods="gs", preset=preset).json()["id"]
    _run_sfm_for(server, worker, 40.0)
    (timing,) = list(server.db["stage_timings"].find({"job_id": first}))
    assert timing["stage"] == "sfm" and timing["device"] == "cpu" and timing["preset"] == preset
    assert timing["seconds"] == pytest.approx(40.0, abs=1.0)
    assert timing["fixed_s"] + timing["seconds_per_unit"] * _work(server, first, "sfm") == pytest.approx(
        timing["seconds"]
    )
    done = _job(server, first)["stages"]["sfm"]
    assert (done["eta_seconds"], done["eta_basis"]) == (0, "done")

    second = server.submit(tiny_video, methods="gs", preset=preset).json()["id"]
    sfm = _job(server, second)["stages"]["sfm"]
    assert sfm["eta_basis"] == "history"
    assert sfm["eta_seconds"] == pytest.approx(timing["seconds"], abs=0.06)  # same video, same work
    # a preset with no history of its own borrows the other's seconds per unit, scaled by its work
    other: PresetName = "high" if preset == "standard" else "standard"
    third = server.submit(tiny_video, methods="gs", preset=other).json()["id"]
    scaled = timing["fixed_s"] + timing["seconds_per_unit"] * _work(server, third, "sfm")
    assert _job(server, third)["stages"]["sfm"]["eta_seconds"] == pytest.approx(scaled, abs=0.06)


def test_a_training_stage_is_estimated_for_the_device_its_worker_announced(server: Server, tiny_video: bytes) -> None:
    job_id = server.submit(tiny_video, methods="gs", preset="standard").json()["id"]
    cpu = _job(server, job_id)["stages"]["gs"]["eta_seconds"]
    response = server.client.post(
        "/internal/v1/workers", headers=WORKER, json={"worker_id": "gs-1", "stage": "gs", "device": "cuda"}
    )
    assert response.status_code == 204
    server.client.app.state.stage_history.invalidate()  # announcements are read at most every few seconds
    cuda = _job(server, job_id)["stages"]["gs"]["eta_seconds"]
    assert cpu == pytest.approx(_default(server, job_id, "gs", "cpu"), abs=0.06)
    assert cuda == pytest.approx(_default(server, job_id, "gs", "cuda"), abs=0.06)
    assert cuda < cpu


def test_an_ended_job_has_nothing_left(server: Server, worker: FakeWorker, tiny_video: bytes) -> None:
    job_id = server.submit(tiny_video, methods="gs").json()["id"]
    assert _job(server, job_id)["eta_seconds"] > 0
    assert server.client.post(f"/v1/jobs/{job_id}/cancel", headers=server.auth()).status_code == 200
    job = _job(server, job_id)
    assert job["eta_seconds"] == 0
    assert {s["eta_seconds"] for s in job["stages"].values()} == {0}
    assert {s["eta_basis"] for s in job["stages"].values()} == {"done"}


def test_openapi_describes_the_eta_fields(server: Server) -> None:
    schemas = server.client.get("/openapi.json").json()["components"]["schemas"]
    job, stage = schemas["JobPublic"]["properties"], schemas["StagePublic"]["properties"]
    assert "longest training stage" in job["eta_seconds"]["description"]
    assert {"eta_seconds", "eta_basis", "rate"} <= set(stage)
    assert set(stage["eta_basis"]["enum"]) == {"done", "measured", "history", "default"}
