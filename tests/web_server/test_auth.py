"""Who may see what: API keys for /v1, the worker token for /internal/v1."""

from __future__ import annotations

import pytest

from tests.web_server.conftest import RecordingBroker, Server, make_settings
from web_server.api_keys import create_key, revoke_key
from web_server.app import create_app


def test_public_api_without_a_key_is_401_problem_json(server: Server) -> None:
    for method, path in (("get", "/v1/jobs"), ("get", "/v1/jobs/abc"), ("post", "/v1/jobs"), ("get", "/v1/events")):
        response = server.client.request(method.upper(), path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "UNAUTHORIZED"
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_or_revoked_key_is_401(server: Server) -> None:
    bad = server.client.get("/v1/jobs", headers={"Authorization": "Bearer v2s_nope_nope"})
    assert bad.status_code == 401
    store = server.client.app.state.store
    key, token = create_key(store, "carol")
    headers = {"Authorization": f"Bearer {token}"}
    assert server.client.get("/v1/jobs", headers=headers).status_code == 200
    assert revoke_key(store, key.id) is True
    assert server.client.get("/v1/jobs", headers=headers).status_code == 401


def test_keys_are_stored_hashed(server: Server) -> None:
    stored = list(server.db.api_keys.find({}))
    assert len(stored) == 2
    tokens = set(server.keys.values())
    for doc in stored:
        assert doc["token_sha256"] not in tokens
        assert not any(token in str(doc) for token in tokens)


def test_another_owners_job_is_404_everywhere(server: Server, tiny_video: bytes) -> None:
    job_id = server.submit(tiny_video, owner="alice").json()["id"]
    bob = server.auth("bob")
    assert server.client.get(f"/v1/jobs/{job_id}", headers=bob).status_code == 404
    assert server.client.get(f"/v1/jobs/{job_id}/events", headers=bob).status_code == 404
    assert server.client.get(f"/v1/jobs/{job_id}/artifacts/input.mp4", headers=bob).status_code == 404
    assert server.client.post(f"/v1/jobs/{job_id}/cancel", headers=bob).status_code == 404
    assert server.client.delete(f"/v1/jobs/{job_id}", headers=bob).status_code == 404
    assert server.client.get("/v1/jobs", headers=bob).json()["items"] == []
    mine = server.client.get(f"/v1/jobs/{job_id}", headers=server.auth("alice"))
    assert mine.status_code == 200 and mine.json()["status"] == "queued"


def test_worker_api_without_the_worker_token_is_401(server: Server, tiny_video: bytes) -> None:
    job_id = server.submit(tiny_video).json()["id"]
    body = {"message_id": "m", "attempt": 1, "worker_id": "w"}
    path = f"/internal/v1/jobs/{job_id}/stages/sfm/claim"
    assert server.client.post(path, json=body).status_code == 401
    with_api_key = server.client.post(path, json=body, headers=server.auth())
    assert with_api_key.status_code == 401 and with_api_key.json()["code"] == "UNAUTHORIZED"
    inputs = server.client.get(f"/internal/v1/jobs/{job_id}/inputs/input", headers={"X-Lease-Id": "x"})
    assert inputs.status_code == 401


def test_local_mode_without_keys_serves_an_anonymous_local_owner(server_factory, tiny_video: bytes) -> None:
    server = server_factory(mode="local", require_api_key=False)
    response = server.client.post("/v1/jobs", files={"video": ("v.mp4", tiny_video, "video/mp4")})
    assert response.status_code == 202, response.text
    assert server.db.jobs.find_one({"_id": response.json()["id"]})["owner"] == "local"
    assert len(server.client.get("/v1/jobs").json()["items"]) == 1


def test_keys_cannot_be_switched_off_outside_local_mode(mongo_db, tmp_path) -> None:
    with pytest.raises(ValueError, match="REQUIRE_API_KEY"):
        create_app(make_settings(tmp_path, require_api_key=False), broker=RecordingBroker(), db=mongo_db)
