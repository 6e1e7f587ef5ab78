"""The worker API client against a real HTTP server: retries, streaming, typed refusals."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path

import pytest

from shared.worker_api import ClaimRequest, Heartbeat
from shared.worker_client import LeaseLost, ServerUnreachable, WorkerAuthError, WorkerClient
from tests.consumer.worker_api_server import TOKEN, WorkerApiServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def claim() -> ClaimRequest:
    return ClaimRequest(message_id="m-1", attempt=1, worker_id="w")


def test_calls_retry_until_a_late_server_comes_up(tmp_path: Path) -> None:
    port = free_port()
    late = WorkerApiServer(port=port)
    started = time.monotonic()  # the server cannot answer before started + 1 s, however slow this machine is
    threading.Timer(1.0, late.start).start()
    try:
        with WorkerClient(f"http://127.0.0.1:{port}", TOKEN, retry_for_s=20.0) as client:
            lease = client.claim("job-1", "gs", claim())
            assert time.monotonic() - started >= 1.0
        assert lease.attempt == 1 and late.stage("job-1", "gs").lease_id == lease.lease_id
    finally:
        late.stop()


def test_calls_give_up_with_server_unreachable_after_the_retry_budget() -> None:
    with WorkerClient(f"http://127.0.0.1:{free_port()}", TOKEN, retry_for_s=0.6) as client:
        started = time.monotonic()
        with pytest.raises(ServerUnreachable):
            client.claim("job-1", "gs", claim())
        assert 0.5 <= time.monotonic() - started < 5.0


def test_input_is_streamed_to_a_file_and_artifact_uploaded_with_its_sha256(tmp_path: Path) -> None:
    api = WorkerApiServer().start()
    payload = bytes(range(256)) * 9000  # 2.3 MB: several chunks each way
    api.inputs[("job-1", "input")] = payload
    try:
        with WorkerClient(api.url, TOKEN) as client:
            lease = client.claim("job-1", "sfm", claim())
            got = client.fetch_input("job-1", "input", lease.lease_id, tmp_path / "in")
            assert got == tmp_path / "in" / "input.mp4"  # named by the server's Content-Disposition
            assert got.read_bytes() == payload
            assert [p.name for p in (tmp_path / "in").iterdir()] == ["input.mp4"]
            info = client.upload_artifact("job-1", "sfm", "sfm.tar", got, lease.lease_id)
        assert info.sha256 == hashlib.sha256(payload).hexdigest() and info.size == len(payload)
        assert api.stage("job-1", "sfm").artifacts["sfm.tar"] == payload
    finally:
        api.stop()


def test_conflict_raises_lease_lost_with_its_code_and_a_bad_token_raises_auth_error() -> None:
    api = WorkerApiServer().start()
    try:
        with WorkerClient(api.url, TOKEN) as client:
            client.claim("job-1", "gs", claim())
            with pytest.raises(LeaseLost) as lost:
                client.heartbeat("job-1", "gs", Heartbeat(lease_id="not-the-lease", progress=0.5))
            assert (lost.value.status_code, lost.value.code) == (409, "STALE_LEASE")
        with WorkerClient(api.url, "wrong-token") as client, pytest.raises(WorkerAuthError):
            client.claim("job-1", "gs", claim())
    finally:
        api.stop()
