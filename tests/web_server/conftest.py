"""Fixtures for the web server tests: the app on a fresh database, API keys, a tiny video, a fake worker.

The broker is the real in-process one from ``shared.broker``; :class:`RecordingBroker` only also keeps
the published requests in a list so a test can act as the worker that received them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.broker import BrokerError, MemoryBroker
from shared.messages import StageName, StageRequest
from shared.settings import Settings
from tests.conftest import import_or_skip

import_or_skip("fastapi", "the 'server' extra")
import_or_skip("pymongo", "the 'server' extra")

WORKER_TOKEN = "worker-token-for-tests-0123456789"
SIGNING_SECRET = "signing-secret-for-tests-0123456789"


class RecordingBroker(MemoryBroker):
    """The in-process broker, also recording every published request (in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[StageRequest] = []
        self.down = False  # set to refuse every publish, as an unreachable RabbitMQ does
        self.declare()

    def publish(self, stage: StageName, body: bytes, *, message_id: str) -> None:
        if self.down:
            raise BrokerError("the broker is down (test)")
        super().publish(stage, body, message_id=message_id)
        self.published.append(StageRequest.from_bytes(body))

    def requests_for(self, stage: StageName) -> list[StageRequest]:
        """The requests published for ``stage``, oldest first."""
        return [r for r in self.published if r.stage == stage]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Service-mode settings for tests: real secrets, short limits, a reaper that tests drive themselves."""
    values: dict[str, Any] = {
        "mode": "service",
        "worker_token": WORKER_TOKEN,
        "signing_secret": SIGNING_SECRET,
        "data_dir": tmp_path / "data",
        "max_upload_bytes": 2 * 1024 * 1024,
        "lease_s": 60.0,
        "max_attempts": 3,
        "reaper_interval_s": 3600.0,
        "retry_backoff_s": 0.0,
        "unclaimed_requeue_s": 600.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 12-frame 64×48 H.264 MP4 of random frames (a few kB)."""
    from shared.video import encode_h264

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8) for _ in range(12)]
    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    encode_h264(path, frames, fps=12.0)
    return path.read_bytes()


@dataclass
class Server:
    """The app under test with its collaborators."""

    client: Any  # fastapi.testclient.TestClient
    broker: RecordingBroker
    settings: Settings
    db: Any
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def orchestrator(self) -> Any:
        return self.client.app.state.orchestrator

    def auth(self, owner: str = "alice") -> dict[str, str]:
        """The Authorization header of ``owner``'s API key."""
        return {"Authorization": f"Bearer {self.keys[owner]}"}

    def submit(self, video: bytes, *, owner: str = "alice", **fields: str) -> Any:
        """``POST /v1/jobs`` with ``video`` and form ``fields``; returns the response."""
        return self.client.post(
            "/v1/jobs",
            headers=self.auth(owner),
            files={"video": ("clip.mp4", video, "video/mp4")},
            data=fields,
        )


@pytest.fixture
def server_factory(mongo_db: Any, tmp_path: Path) -> Iterator[Any]:
    """Build a :class:`Server` with settings overrides (one per test; closed afterwards)."""
    from fastapi.testclient import TestClient

    from web_server.api_keys import create_key
    from web_server.app import create_app

    opened: list[TestClient] = []

    def build(**overrides: Any) -> Server:
        settings = make_settings(tmp_path, **overrides)
        broker = RecordingBroker()
        app = create_app(settings, broker=broker, db=mongo_db)
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        server = Server(client=client, broker=broker, settings=settings, db=mongo_db)
        store = app.state.store
        for owner in ("alice", "bob"):
            server.keys[owner] = create_key(store, owner)[1]
        return server

    yield build
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def server(server_factory: Any) -> Server:
    """The app with default test settings."""
    return server_factory()


class FakeWorker:
    """Drives the worker API the way a stage worker does (claim, heartbeat, upload, result)."""

    def __init__(self, server: Server, worker_id: str = "worker-1") -> None:
        self.server = server
        self.worker_id = worker_id
        self.headers = {"Authorization": f"Bearer {WORKER_TOKEN}"}

    def url(self, request: StageRequest, action: str) -> str:
        return f"/internal/v1/jobs/{request.job_id}/stages/{request.stage}/{action}"

    def claim(self, request: StageRequest, *, redelivered: bool = False) -> Any:
        body = {
            "message_id": request.message_id,
            "attempt": request.attempt,
            "worker_id": self.worker_id,
            "redelivered": redelivered,
        }
        return self.server.client.post(self.url(request, "claim"), json=body, headers=self.headers)

    def heartbeat(self, request: StageRequest, lease_id: str, progress: float = 0.5, message: str = "working") -> Any:
        body = {"lease_id": lease_id, "progress": progress, "message": message}
        return self.server.client.post(self.url(request, "heartbeat"), json=body, headers=self.headers)

    def release(self, request: StageRequest, lease_id: str) -> Any:
        return self.server.client.post(self.url(request, "release"), json={"lease_id": lease_id}, headers=self.headers)

    def upload(self, request: StageRequest, lease_id: str, name: str, data: bytes, sha256: str | None = None) -> Any:
        import hashlib

        headers = {
            **self.headers,
            "X-Lease-Id": lease_id,
            "X-Content-SHA256": sha256 or hashlib.sha256(data).hexdigest(),
        }
        return self.server.client.put(self.url(request, f"artifacts/{name}"), content=data, headers=headers)

    def fetch_input(self, request: StageRequest, lease_id: str, name: str) -> Any:
        headers = {**self.headers, "X-Lease-Id": lease_id}
        return self.server.client.get(f"/internal/v1/jobs/{request.job_id}/inputs/{name}", headers=headers)

    def succeed(self, request: StageRequest, lease_id: str, artifacts: list[str], metrics: dict | None = None) -> Any:
        body = {"lease_id": lease_id, "status": "succeeded", "artifacts": artifacts, "metrics": metrics or {}}
        return self.server.client.post(self.url(request, "result"), json=body, headers=self.headers)

    def fail(
        self, request: StageRequest, lease_id: str, code: str, *, retryable: bool, message: str = "it broke"
    ) -> Any:
        body = {
            "lease_id": lease_id,
            "status": "failed",
            "error": {"code": code, "message": message, "retryable": retryable},
        }
        return self.server.client.post(self.url(request, "result"), json=body, headers=self.headers)

    def run_stage(self, request: StageRequest, files: dict[str, bytes]) -> str:
        """Claim, heartbeat, upload ``files`` and report success; returns the lease id."""
        lease = self.claim(request)
        assert lease.status_code == 200, lease.text
        lease_id = lease.json()["lease_id"]
        assert self.heartbeat(request, lease_id).status_code == 200
        for name, data in files.items():
            response = self.upload(request, lease_id, name, data)
            assert response.status_code == 201, response.text
        result = self.succeed(request, lease_id, list(files), metrics={"seconds": 1.5})
        assert result.status_code == 200, result.text
        return lease_id


@pytest.fixture
def worker(server: Server) -> FakeWorker:
    """A fake worker on the default server."""
    return FakeWorker(server)


@contextlib.contextmanager
def live_server(app: Any, *, access_log: bool = False, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a loopback port in a thread; yields its base URL.

    ``access_log`` turns on uvicorn's per-request log lines (logger ``uvicorn.access``, level INFO);
    ``port`` is the port to listen on (default: a free one).
    """
    import uvicorn

    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        lifespan="off",
        http="h11",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
