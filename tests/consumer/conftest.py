"""Fixtures of the consumer tests: the real web server app, served over HTTP, that workers talk to.

The app is :func:`web_server.app.create_app` on the in-process broker and the test's MongoDB database
(SecantusDB unless ``VID2SCENE_MONGO_URL`` says otherwise), built by the web server tests'
``server_factory`` and served by uvicorn in a thread (``live_server``). Tests submit real jobs, run
workers against the server's worker API, and assert on the job document the server keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared.messages import StageName, StageRequest
from tests.web_server.conftest import WORKER_TOKEN, RecordingBroker, Server, live_server
from tests.web_server.conftest import server_factory as server_factory  # a fixture used here
from tests.web_server.conftest import tiny_video as tiny_video  # a fixture used here
from web_server.models import StoredJob, StoredStage

#: The worker token the test server accepts.
TOKEN = WORKER_TOKEN

#: Heartbeat period the test server hands out with each lease: short, so tests see heartbeats quickly.
HEARTBEAT_S = 0.2


@dataclass
class LiveApi:
    """The real web server: its app served on ``url`` and its collaborators (broker, database).

    Attributes:
        server: the app under test (a TestClient for the public API, its broker and database).
        url: the base URL workers reach the app on.
        video: the video :meth:`submit` uploads (a tiny real H.264 MP4).
    """

    server: Server
    url: str
    video: bytes

    @property
    def broker(self) -> RecordingBroker:
        """The in-process broker the server publishes stage requests to (workers consume from it)."""
        return self.server.broker

    def submit(self, **fields: str) -> str:
        """Upload :attr:`video` as a new job with form ``fields``; returns the job id."""
        response = self.server.submit(self.video, **fields)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def request(self, job_id: str, stage: StageName) -> StageRequest:
        """The last request the server published for ``job_id``'s ``stage``."""
        (*_, last) = [r for r in self.broker.requests_for(stage) if r.job_id == job_id]
        return last

    def job(self, job_id: str) -> StoredJob:
        """The job document as the server stores it now."""
        job = self.server.orchestrator.get(job_id)
        assert job is not None, f"job {job_id} is gone"
        return job

    def stage(self, job_id: str, stage: StageName) -> StoredStage:
        """One stage of the stored job."""
        return self.job(job_id).stages[stage]

    def artifact(self, job_id: str, name: str) -> bytes:
        """A job's file as a client downloads it (``GET /v1/jobs/{id}/artifacts/{name}``)."""
        response = self.server.client.get(f"/v1/jobs/{job_id}/artifacts/{name}", headers=self.server.auth())
        assert response.status_code == 200, response.text
        return bytes(response.content)

    def cancel(self, job_id: str) -> None:
        """Cancel the job through the public API (``POST /v1/jobs/{id}/cancel``)."""
        response = self.server.client.post(f"/v1/jobs/{job_id}/cancel", headers=self.server.auth())
        assert response.status_code == 200, response.text


@pytest.fixture
def live_api_factory(server_factory: Any, tiny_video: bytes) -> Iterator[Any]:
    """Build a :class:`LiveApi` with settings overrides (served until the test ends)."""
    from contextlib import ExitStack

    with ExitStack() as stack:

        def build(**overrides: Any) -> LiveApi:
            server = server_factory(**{"heartbeat_s": HEARTBEAT_S, **overrides})
            url = stack.enter_context(live_server(server.client.app))
            return LiveApi(server=server, url=url, video=tiny_video)

        yield build


@pytest.fixture
def live_api(live_api_factory: Any) -> LiveApi:
    """The real web server with the test settings, served over HTTP."""
    return live_api_factory()
