"""Queue positions come from a shared snapshot: reading a job is one store round trip, positions stay right."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pymongo
from pymongo import monitoring

from tests.web_server.conftest import FakeWorker, RecordingBroker, Server, make_settings
from web_server.models import StoredStage
from web_server.queue_positions import QueuePositions
from web_server.store import Store, utcnow


class CommandLog(monitoring.CommandListener):
    """The ``(command, collection)`` of every command a client sends."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_reading_a_queued_job_costs_one_jobs_query_per_request(
    mongo_url: str, mongo_db: Any, tmp_path: Path, tiny_video: bytes
) -> None:
    from fastapi.testclient import TestClient

    from web_server.api_keys import create_key
    from web_server.app import create_app

    log = CommandLog()
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_url, tz_aware=True, event_listeners=[log])
    try:
        settings = make_settings(tmp_path, queue_snapshot_ms=60_000)
        app = create_app(settings, broker=RecordingBroker(), db=client[mongo_db.name])
        with TestClient(app) as http:
            auth = {"Authorization": f"Bearer {create_key(app.state.store, 'alice')[1]}"}
            files = {"video": ("clip.mp4", tiny_video, "video/mp4")}
            ids = [http.post("/v1/jobs", headers=auth, files=files).json()["id"] for _ in range(3)]
            log.commands.clear()
            positions = [http.get(f"/v1/jobs/{ids[i % 3]}", headers=auth).json()["queue_position"] for i in range(30)]
            assert positions == [1, 2, 3] * 10
            on_jobs = [name for name, collection in log.commands if collection == "jobs"]
            assert on_jobs.count("aggregate") == 0 and on_jobs.count("count") == 0
            # each request's job, and at most one snapshot for all of them (the last upload's answer read one)
            assert 30 <= on_jobs.count("find") <= 31
    finally:
        client.close()


def test_a_claim_through_this_server_moves_the_queue_at_once(server: Server, tiny_video: bytes) -> None:
    ids = [server.submit(tiny_video).json()["id"] for _ in range(3)]
    assert server.client.get(f"/v1/jobs/{ids[2]}", headers=server.auth()).json()["queue_position"] == 3
    FakeWorker(server).claim(server.broker.requests_for("sfm")[0])
    assert server.client.get(f"/v1/jobs/{ids[2]}", headers=server.auth()).json()["queue_position"] == 2
    server.client.post(f"/v1/jobs/{ids[1]}/cancel", headers=server.auth())
    assert server.client.get(f"/v1/jobs/{ids[2]}", headers=server.auth()).json()["queue_position"] == 1


def test_a_snapshot_is_reused_until_it_is_too_old_or_misses_the_stage_asked_about(mongo_db: Any) -> None:
    store = Store(mongo_db)
    now = utcnow()

    def insert(job_id: str, queued_at: Any) -> StoredStage:
        stage = {"status": "queued", "queued_at": queued_at, "attempt": 0, "progress": 0.0, "message": ""}
        store.jobs.insert_one({"_id": job_id, "status": "queued", "stages": {"sfm": stage}})
        return StoredStage.model_validate(stage)

    clock = [0.0]
    positions = QueuePositions(store, max_age_s=1.0, clock=lambda: clock[0])
    first = insert("a", now - timedelta(seconds=30))
    second = insert("b", now - timedelta(seconds=20))
    assert positions.position("sfm", second) == 2
    # Another server claims "a": this snapshot does not know yet, until it is older than max_age_s.
    store.jobs.update_one({"_id": "a"}, {"$set": {"stages.sfm.status": "running", "status": "running"}})
    clock[0] = 0.5
    assert positions.position("sfm", second) == 2
    clock[0] = 1.6
    assert positions.position("sfm", second) == 1
    # A stage queued after the snapshot was taken makes the next position read a new one.
    late = insert("c", utcnow() + timedelta(seconds=5))
    assert positions.position("sfm", late) == 2
    assert positions.position("sfm", first.model_copy(update={"status": "running"})) is None
