"""SSE streams, listing, health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from tests.web_server.conftest import FakeWorker, Server, live_server
from web_server.store import utcnow


def _events(lines: Any, count: int) -> list[tuple[str, dict]]:
    """Read ``count`` SSE events (name, data) from a line iterator."""
    out: list[tuple[str, dict]] = []
    name = "message"
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            out.append((name, json.loads(line.removeprefix("data: "))))
            if len(out) == count:
                break
    return out


def test_job_events_send_a_snapshot_per_change_and_close_when_the_job_ends(
    server: Server, worker: FakeWorker, tiny_video: bytes
) -> None:
    server.client.app.state.sse_poll_s = 0.05
    job_id = server.submit(tiny_video).json()["id"]
    (sfm,) = server.broker.requests_for("sfm")

    def act() -> None:  # started once the stream's first snapshot arrived, so no change can precede it
        lease_id = worker.claim(sfm).json()["lease_id"]
        time.sleep(0.3)
        worker.heartbeat(sfm, lease_id, 0.5, "half way")
        time.sleep(0.3)
        server.orchestrator.cancel(job_id, utcnow())

    with live_server(server.client.app) as base:
        with httpx.stream("GET", f"{base}/v1/jobs/{job_id}/events", headers=server.auth(), timeout=20) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            events = _events(lines, 1)
            actor = threading.Thread(target=act)
            actor.start()
            events += _events(lines, 100)  # ends when the server closes the stream
        actor.join()
    statuses = [data["status"] for _, data in events]
    assert statuses[0] == "queued"
    assert "running" in statuses
    assert statuses[-1] == "cancelled"
    assert any(data["stages"]["sfm"]["message"] == "half way" for _, data in events)


def test_all_events_follow_every_job_of_the_caller_only(server: Server, tiny_video: bytes) -> None:
    server.client.app.state.sse_poll_s = 0.05
    mine = server.submit(tiny_video).json()["id"]
    server.submit(tiny_video, owner="bob")
    with (
        live_server(server.client.app) as base,
        httpx.stream("GET", f"{base}/v1/events", headers=server.auth(), timeout=20) as response,
    ):
        lines = response.iter_lines()
        events = _events(lines, 1)  # the snapshot of the active jobs, before anything changes
        server.orchestrator.cancel(mine, utcnow())
        events += _events(lines, 1)
    assert [(name, data["id"], data["status"]) for name, data in events] == [
        ("job", mine, "queued"),
        ("job", mine, "cancelled"),
    ]


def test_job_list_is_newest_first_with_cursor_and_status_filter(server: Server, tiny_video: bytes) -> None:
    ids = [server.submit(tiny_video).json()["id"] for _ in range(3)]
    server.client.post(f"/v1/jobs/{ids[0]}/cancel", headers=server.auth())
    page1 = server.client.get("/v1/jobs", params={"limit": 2}, headers=server.auth()).json()
    assert [j["id"] for j in page1["items"]] == [ids[2], ids[1]]
    page2 = server.client.get("/v1/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=server.auth())
    assert [j["id"] for j in page2.json()["items"]] == [ids[0]]
    assert page2.json()["next_cursor"] is None
    cancelled = server.client.get("/v1/jobs", params={"status": "cancelled"}, headers=server.auth()).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[0]]
    bad = server.client.get("/v1/jobs", params={"status": "lost"}, headers=server.auth())
    assert bad.status_code == 422 and bad.json()["code"] == "VALIDATION_ERROR"


def test_queued_jobs_show_their_queue_position(server: Server, tiny_video: bytes) -> None:
    ids = [server.submit(tiny_video).json()["id"] for _ in range(3)]
    positions = [server.client.get(f"/v1/jobs/{i}", headers=server.auth()).json()["queue_position"] for i in ids]
    assert positions == [1, 2, 3]
    FakeWorker(server).claim(server.broker.requests_for("sfm")[0])
    assert server.client.get(f"/v1/jobs/{ids[2]}", headers=server.auth()).json()["queue_position"] == 2


def test_health_readiness_and_metrics(server: Server, tiny_video: bytes) -> None:
    assert server.client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = server.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"mongo": "ok", "broker": "ok"}
    server.submit(tiny_video)
    server.submit(b"not a video")
    text = server.client.get("/metrics").text
    assert 'vid2scene_jobs{status="queued"} 1' in text
    assert 'vid2scene_stages{stage="sfm",status="queued"} 1' in text
    assert 'vid2scene_uploads_total{result="accepted"} 1' in text
    assert 'vid2scene_uploads_total{result="invalid_video"} 1' in text
    assert 'vid2scene_http_requests_total{method="POST",route="/v1/jobs",status="202"} 1' in text


def test_readiness_fails_when_the_broker_is_closed(server: Server) -> None:
    server.broker.close()
    ready = server.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["broker"] == "unavailable"


def test_unknown_routes_and_methods_answer_problem_json(server: Server) -> None:
    missing = server.client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    wrong = server.client.put("/v1/jobs", headers=server.auth())
    assert wrong.status_code == 405 and wrong.headers["content-type"] == "application/problem+json"


def test_openapi_documents_every_public_route(server: Server) -> None:
    spec = server.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/events",
        "/v1/jobs/{job_id}/artifacts/{name}",
        "/v1/jobs/{job_id}/cancel",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    assert not [p for p in paths if p.startswith("/internal")]  # the worker API is not public
    upload = paths["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["required"] == ["video"]
    assert server.client.get("/docs").status_code == 200
