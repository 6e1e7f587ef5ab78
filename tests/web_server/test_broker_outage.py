"""Uploads while the broker refuses publishes: accepted, marked unpublished, published by the next reaper pass."""

from __future__ import annotations

from tests.web_server.conftest import FakeWorker, Server
from web_server.store import utcnow


def _sfm(server: Server, job_id: str) -> dict:
    return server.db["jobs"].find_one({"_id": job_id})["stages"]["sfm"]


def test_upload_while_the_broker_is_down_is_accepted_and_the_reaper_publishes_it_once_the_broker_is_back(
    server: Server, tiny_video: bytes
) -> None:
    server.broker.down = True
    response = server.submit(tiny_video)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert (_sfm(server, job_id)["status"], _sfm(server, job_id)["unpublished"]) == ("queued", True)
    assert server.orchestrator.reap(utcnow()).published == []  # still down: nothing published
    assert server.broker.published == []

    server.broker.down = False
    assert server.orchestrator.reap(utcnow()).published == [job_id]  # the next pass, not after 600 s
    (sfm,) = server.broker.requests_for("sfm")
    assert sfm.message_id == _sfm(server, job_id)["published_message_id"] and sfm.attempt == 1
    assert _sfm(server, job_id)["unpublished"] is False
    assert server.orchestrator.reap(utcnow()).published == []  # published once
    assert FakeWorker(server).claim(sfm).status_code == 200
