"""The server advertises its training device, and a job without a preset gets the preset that device calls for."""

from __future__ import annotations

from typing import Any

from shared.options.base import default_preset_for
from tests.web_server.conftest import WORKER_TOKEN, Server

WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}


def _announce(server: Server, worker_id: str, device: str, stage: str = "gs") -> Any:
    return server.client.post(
        "/internal/v1/workers", headers=WORKER, json={"worker_id": worker_id, "stage": stage, "device": device}
    )


def test_before_any_worker_announces_the_device_is_unknown_and_the_default_is_standard(server: Server) -> None:
    body = server.client.get("/v1/capabilities", headers=server.auth()).json()
    assert body["training_device"] == "unknown"
    assert body["default_preset"] == "standard"
    assert body["presets"] == ["preview", "standard", "high"]


def test_a_cpu_worker_makes_preview_the_default_and_says_why(server: Server) -> None:
    assert _announce(server, "gs-1", "cpu").status_code == 204
    body = server.client.get("/v1/capabilities", headers=server.auth()).json()
    assert body["training_device"] == "cpu"
    assert body["default_preset"] == "preview"
    assert "no GPU" in body["reason"]


def test_the_latest_announcement_decides(server: Server) -> None:
    _announce(server, "gs-cpu", "cpu")
    _announce(server, "nerf-gpu", "cuda", stage="nerf")
    assert server.client.get("/v1/capabilities", headers=server.auth()).json()["default_preset"] == "standard"
    _announce(server, "gs-cpu", "cpu")  # restarted later
    assert server.client.get("/v1/capabilities", headers=server.auth()).json()["training_device"] == "cpu"


def test_the_operator_setting_overrides_the_announcements(server_factory: Any) -> None:
    server = server_factory(training_device="cuda")
    _announce(server, "gs-1", "cpu")
    body = server.client.get("/v1/capabilities", headers=server.auth()).json()
    assert (body["training_device"], body["default_preset"]) == ("cuda", "standard")


def test_a_job_without_a_preset_gets_the_servers_default(server: Server, tiny_video: bytes) -> None:
    _announce(server, "gs-1", "cpu")
    job = server.submit(tiny_video).json()
    assert job["preset"] == "preview"
    assert server.submit(tiny_video, preset="high").json()["preset"] == "high"


def test_capabilities_need_an_api_key_and_announcements_the_worker_token(server: Server) -> None:
    assert server.client.get("/v1/capabilities").status_code == 401
    refused = server.client.post("/internal/v1/workers", json={"worker_id": "w", "stage": "gs", "device": "cpu"})
    assert refused.status_code == 401
    assert _announce(server, "w", "tpu").status_code == 422


def test_one_rule_chooses_the_preset_everywhere() -> None:
    assert default_preset_for("cuda")[0] == "standard"
    assert default_preset_for("cpu")[0] == "preview"
    assert default_preset_for(None)[0] == "standard"
