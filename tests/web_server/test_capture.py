"""The capture check on the job: a heartbeat carries it, the job shows it as `capture`, SSE snapshots carry it."""

from __future__ import annotations

import threading
import time

import httpx

from tests.fixtures.capture import poor_capture_report
from tests.web_server.conftest import WORKER_TOKEN, FakeWorker, Server, live_server
from tests.web_server.test_events_and_health import _events


def _heartbeat_with_capture(server: Server, worker: FakeWorker, sfm, lease_id: str) -> httpx.Response:
    body = {
        "lease_id": lease_id,
        "progress": 0.03,
        "message": "capture poor",
        "capture": poor_capture_report().model_dump(mode="json"),
    }
    return server.client.post(
        worker.url(sfm, "heartbeat"), json=body, headers={"Authorization": f"Bearer {WORKER_TOKEN}"}
    )


def test_a_job_shows_no_capture_until_the_sfm_stage_reports_it(server: Server, tiny_video: bytes) -> None:
    job = server.submit(tiny_video).json()
    assert job["capture"] is None


def test_a_heartbeat_with_the_capture_check_puts_it_on_the_job(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    job_id = server.submit(tiny_video).json()["id"]
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    assert worker.heartbeat(sfm, lease_id).status_code == 200  # a plain heartbeat leaves it unset
    assert server.client.get(f"/v1/jobs/{job_id}", headers=server.auth()).json()["capture"] is None
    assert _heartbeat_with_capture(server, worker, sfm, lease_id).status_code == 200
    assert worker.heartbeat(sfm, lease_id).status_code == 200  # later heartbeats without it keep it
    capture = server.client.get(f"/v1/jobs/{job_id}", headers=server.auth()).json()["capture"]
    assert capture == poor_capture_report().model_dump(mode="json")


def test_a_poor_capture_failure_keeps_the_capture_and_the_sse_snapshots_carry_it(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    server.client.app.state.sse_poll_s = 0.05
    job_id = server.submit(tiny_video, methods="gs").json()["id"]
    (sfm,) = server.broker.requests_for("sfm")

    def act() -> None:
        time.sleep(0.3)
        lease_id = worker.claim(sfm).json()["lease_id"]
        _heartbeat_with_capture(server, worker, sfm, lease_id)
        time.sleep(0.3)
        worker.fail(sfm, lease_id, "POOR_CAPTURE", retryable=False, message="Move the camera.")

    with live_server(server.client.app) as base:
        actor = threading.Thread(target=act)
        actor.start()
        with httpx.stream("GET", f"{base}/v1/jobs/{job_id}/events", headers=server.auth(), timeout=20) as response:
            events = _events(response.iter_lines(), 100)  # ends when the job ends
        actor.join()
    assert events[0][1]["capture"] is None
    final = events[-1][1]
    assert final["status"] == "failed"
    assert final["error"]["code"] == "POOR_CAPTURE"
    assert final["capture"]["verdict"] == "poor" and final["capture"]["advice"]
    job = server.client.get(f"/v1/jobs/{job_id}", headers=server.auth()).json()
    assert job["capture"] == final["capture"]


def test_the_web_server_imports_the_capture_model_without_opencv() -> None:
    import subprocess
    import sys

    code = "import sys, web_server.app, web_server.views; assert 'cv2' not in sys.modules, 'cv2 imported'"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr


def test_a_heartbeat_without_a_capture_is_sent_without_the_field() -> None:
    from shared.worker_api import Heartbeat

    plain = Heartbeat(lease_id="l", progress=0.5, message="working")
    assert plain.model_dump(mode="json") == {"lease_id": "l", "progress": 0.5, "message": "working"}
    carrying = Heartbeat(lease_id="l", progress=0.5, capture=poor_capture_report())
    assert Heartbeat.model_validate(carrying.model_dump(mode="json")) == carrying


def test_a_heartbeat_with_an_absurd_capture_is_refused_with_422(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    server.submit(tiny_video)
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    capture = {**poor_capture_report().model_dump(mode="json"), "usable_frames": 10**20}  # beyond MongoDB's ints
    body = {"lease_id": lease_id, "progress": 0.1, "capture": capture}
    response = server.client.post(
        worker.url(sfm, "heartbeat"), json=body, headers={"Authorization": f"Bearer {WORKER_TOKEN}"}
    )
    assert response.status_code == 422
