"""The worker API client against the real web server over HTTP: retries, streaming, typed refusals."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shared.worker_api import ClaimRequest, Heartbeat, StageResult
from shared.worker_client import LeaseLost, ServerUnreachable, WorkerAuthError, WorkerClient
from tests.consumer.conftest import TOKEN, LiveApi
from tests.web_server.conftest import live_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def claim(api: LiveApi, job_id: str, stage: str = "sfm") -> ClaimRequest:
    """The claim a worker sends for the server's last request of ``stage``."""
    request = api.request(job_id, stage)  # type: ignore[arg-type]
    return ClaimRequest(message_id=request.message_id, attempt=request.attempt, worker_id="w")


def test_calls_retry_until_a_late_server_comes_up(server_factory: Any, tiny_video: bytes) -> None:
    server = server_factory()
    api = LiveApi(server=server, url="", video=tiny_video)  # served late, below
    job_id = api.submit()
    port = free_port()
    stop_serving = threading.Event()

    def serve_late() -> None:
        time.sleep(1.0)
        with live_server(server.client.app, port=port):
            stop_serving.wait()

    started = time.monotonic()  # the server cannot answer before started + 1 s, however slow this machine is
    thread = threading.Thread(target=serve_late, daemon=True)
    thread.start()
    try:
        with WorkerClient(f"http://127.0.0.1:{port}", TOKEN, retry_for_s=30.0) as client:
            lease = client.claim(job_id, "sfm", claim(api, job_id))
            assert time.monotonic() - started >= 1.0
    finally:
        stop_serving.set()
        thread.join(30)
    sfm = api.stage(job_id, "sfm")
    assert (lease.attempt, sfm.attempt, sfm.lease_id, sfm.status) == (1, 1, lease.lease_id, "running")


def test_calls_give_up_with_server_unreachable_after_the_retry_budget() -> None:
    with WorkerClient(f"http://127.0.0.1:{free_port()}", TOKEN, retry_for_s=0.6) as client:
        started = time.monotonic()
        with pytest.raises(ServerUnreachable):
            client.claim("job-1", "gs", ClaimRequest(message_id="m-1", attempt=1, worker_id="w"))
        assert 0.5 <= time.monotonic() - started < 5.0


def test_inputs_are_streamed_to_files_and_artifacts_uploaded_with_their_sha256(
    live_api: LiveApi, tmp_path: Path
) -> None:
    job_id = live_api.submit()
    payload = bytes(range(256)) * 9000  # 2.3 MB: several chunks each way
    (tmp_path / "sfm.tar").write_bytes(payload)
    with WorkerClient(live_api.url, TOKEN) as client:
        sfm = client.claim(job_id, "sfm", claim(live_api, job_id))
        video = client.fetch_input(job_id, "input", sfm.lease_id, tmp_path / "sfm-in")
        assert video == tmp_path / "sfm-in" / "input.mp4"  # named by the server's Content-Disposition
        assert video.read_bytes() == live_api.video
        assert [p.name for p in (tmp_path / "sfm-in").iterdir()] == ["input.mp4"]  # no partial file left
        info = client.upload_artifact(job_id, "sfm", "sfm.tar", tmp_path / "sfm.tar", sfm.lease_id)
        assert info.sha256 == hashlib.sha256(payload).hexdigest() and info.size == len(payload)
        client.report_result(
            job_id, "sfm", StageResult(lease_id=sfm.lease_id, status="succeeded", artifacts=["sfm.tar"])
        )
        gs = client.claim(job_id, "gs", claim(live_api, job_id, "gs"))
        archive = client.fetch_input(job_id, "sfm.tar", gs.lease_id, tmp_path / "gs-in")
    assert archive.name == "sfm.tar" and archive.read_bytes() == payload
    (stored,) = live_api.stage(job_id, "sfm").artifacts
    assert (stored.name, stored.size, stored.sha256) == ("sfm.tar", len(payload), info.sha256)


def test_conflict_raises_lease_lost_with_its_code_and_a_bad_token_raises_auth_error(live_api: LiveApi) -> None:
    job_id = live_api.submit()
    with WorkerClient(live_api.url, TOKEN) as client:
        lease = client.claim(job_id, "sfm", claim(live_api, job_id))
        with pytest.raises(LeaseLost) as lost:
            client.heartbeat(job_id, "sfm", Heartbeat(lease_id="not-the-lease", progress=0.5))
        assert (lost.value.status_code, lost.value.code) == (409, "STALE_LEASE")
    with WorkerClient(live_api.url, "wrong-token-0123456789") as client, pytest.raises(WorkerAuthError):
        client.heartbeat(job_id, "sfm", Heartbeat(lease_id=lease.lease_id, progress=0.5))
    sfm = live_api.stage(job_id, "sfm")
    assert (sfm.lease_id, sfm.progress) == (lease.lease_id, 0.0)  # neither call was recorded
