"""MongoDB down: the API answers 503 ``STORE_UNAVAILABLE`` with ``Retry-After`` once ``mongo_timeout_ms`` has passed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from shared.settings import Settings
from tests.fixtures.mongo import SecantusProcess
from tests.web_server.conftest import RecordingBroker, make_settings


def test_with_mongodb_stopped_the_api_answers_503_store_unavailable_quickly(
    private_mongo: SecantusProcess, tmp_path: Path, tiny_video: bytes
) -> None:
    from fastapi.testclient import TestClient

    from web_server.api_keys import create_key
    from web_server.app import create_app

    settings = make_settings(tmp_path, mongo_url=private_mongo.url, mongo_db="store_down", mongo_timeout_ms=1000)
    limit_s = settings.mongo_timeout_ms / 1000 + 3.0  # pymongo's own default would take 30 s; ours took 5
    app = create_app(settings, broker=RecordingBroker())
    with TestClient(app) as client:
        key = create_key(app.state.store, "alice")[1]
        auth = {"Authorization": f"Bearer {key}"}
        files = {"video": ("clip.mp4", tiny_video, "video/mp4")}
        job_id = client.post("/v1/jobs", headers=auth, files=files).json()["id"]
        assert client.get(f"/v1/jobs/{job_id}", headers=auth).status_code == 200

        private_mongo.stop()
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", f"/v1/jobs/{job_id}", {}),
            ("GET", "/v1/jobs", {}),
            ("GET", f"/v1/jobs/{job_id}/artifacts/input.mp4", {}),
            ("POST", "/v1/jobs", {"files": files}),
        ]
        for method, path, extra in calls:
            started = time.monotonic()
            response = client.request(method, path, headers=auth, **extra)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "STORE_UNAVAILABLE"
            assert int(response.headers["retry-after"]) > 0
            assert elapsed < limit_s, (path, elapsed)
        started = time.monotonic()
        ready = client.get("/readyz")
        assert time.monotonic() - started < limit_s
        assert ready.status_code == 503 and ready.json()["checks"]["mongo"].startswith("unavailable")


def test_by_default_a_request_gives_up_on_mongodb_within_two_seconds() -> None:
    assert Settings.model_fields["mongo_timeout_ms"].default <= 2000
