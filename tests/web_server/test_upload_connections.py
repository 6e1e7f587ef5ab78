"""Uploads over real sockets: stalled bodies are dropped, one key cannot hold every upload slot, and a lost
idempotency race leaves no file behind.

The app is served by uvicorn on a loopback port in a thread (``live_server``); the tests write raw
HTTP so they can stop sending mid-body.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.web_server.conftest import Server, live_server

BOUNDARY = "XyZ"


def _part_head(name: str = "video") -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="clip.mp4"\r\n\r\n'.encode()


def _form(video: bytes, **fields: str) -> bytes:
    body = b""
    for name, value in fields.items():
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    return body + _part_head() + video + f"\r\n--{BOUNDARY}--\r\n".encode()


def _open_upload(base_url: str, headers: dict[str, str], first_bytes: bytes, content_length: int) -> socket.socket:
    """Send a POST /v1/jobs request line, headers and the first bytes of the body; the rest is up to the caller."""
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    lines = [
        "POST /v1/jobs HTTP/1.1",
        f"Host: {url.netloc}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {content_length}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + first_bytes)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and the raw response, read until the server closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return int(data.split(b" ", 2)[1]), data


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _stored(server: Server) -> tuple[int, int]:
    return server.db["files.files"].count_documents({}), server.db["files.chunks"].count_documents({})


def _temp_files(server: Server) -> list[Any]:
    uploads = server.settings.data_dir / "uploads"
    return list(uploads.iterdir()) if uploads.exists() else []


def test_a_stalled_upload_is_dropped_after_the_idle_timeout_with_its_partial_file_and_chunks(server_factory) -> None:
    server = server_factory(upload_idle_timeout_s=1.0, max_upload_bytes=8 * 1024 * 1024)
    slots = server.client.app.state.upload_slots
    with live_server(server.client.app) as base:
        sent = _part_head() + b"\0" * (1536 * 1024)  # one GridFS chunk written, then silence
        sock = _open_upload(base, server.auth(), sent, content_length=6 * 1024 * 1024)
        _wait_for(lambda: server.db["files.chunks"].count_documents({}) == 1)
        started = time.monotonic()
        status, raw = _read_response(sock)  # returns once the server answers and closes
        waited = time.monotonic() - started
    assert status == 408
    assert b'"code":"UPLOAD_TIMEOUT"' in raw
    assert waited < 15
    assert _stored(server) == (0, 0)
    assert _temp_files(server) == []
    assert slots.active("alice") == 0
    assert server.db.jobs.count_documents({}) == 0


def test_one_key_gets_429_with_retry_after_once_its_upload_slots_are_taken(server_factory, tiny_video: bytes) -> None:
    server = server_factory(upload_idle_timeout_s=3.0, max_concurrent_uploads_per_key=2)
    slots = server.client.app.state.upload_slots
    with live_server(server.client.app) as base:
        stalled = [_open_upload(base, server.auth(), _part_head() + b"\0" * 1000, 10**6) for _ in range(2)]
        _wait_for(lambda: slots.active("alice") == 2)
        body = _form(tiny_video)
        headers = {**server.auth(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        refused = httpx.post(f"{base}/v1/jobs", content=body, headers=headers, timeout=30)
        other_key = httpx.post(
            f"{base}/v1/jobs",
            content=body,
            headers={**server.auth("bob"), "Content-Type": headers["Content-Type"]},
            timeout=30,
        )
        for sock in stalled:
            assert _read_response(sock)[0] == 408
        _wait_for(lambda: slots.active("alice") == 0)
        later = httpx.post(f"{base}/v1/jobs", content=body, headers=headers, timeout=30)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "TOO_MANY_UPLOADS"
    assert int(refused.headers["retry-after"]) > 0
    assert other_key.status_code == 202  # the limit is per key
    assert later.status_code == 202  # slots are given back when uploads end
    assert server.db.jobs.count_documents({}) == 2


def _race(server: Server, video: bytes, first_fields: dict[str, str], second_fields: dict[str, str]) -> Any:
    """Start upload A with key K, let upload B with key K finish first, then finish A; returns (A's raw, B)."""
    headers = {**server.auth(), "Idempotency-Key": "race-1"}
    body_a = _form(video, **first_fields)
    with live_server(server.client.app) as base:
        sock = _open_upload(base, headers, body_a[:10], len(body_a))  # A is past its key look-up
        _wait_for(lambda: len(_temp_files(server)) == 1)
        second = httpx.post(
            f"{base}/v1/jobs",
            content=_form(video, **second_fields),
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=30,
        )
        sock.sendall(body_a[10:])
        status, raw = _read_response(sock)
    return status, raw, second


def test_an_upload_that_loses_the_idempotency_race_returns_the_winner_and_deletes_its_own_file(
    server: Server, tiny_video: bytes
) -> None:
    status, raw, winner = _race(server, tiny_video, {"methods": "gs"}, {"methods": "gs"})
    assert winner.status_code == 202
    assert status == 202
    assert f'"id":"{winner.json()["id"]}"'.encode() in raw
    assert server.db.jobs.count_documents({}) == 1
    chunks = server.db["files.chunks"].count_documents({})
    assert _stored(server) == (1, chunks) and chunks >= 1  # only the winner's file
    assert _temp_files(server) == []


def test_a_different_request_that_loses_the_idempotency_race_is_422_and_leaves_no_file(
    server: Server, tiny_video: bytes
) -> None:
    status, raw, winner = _race(server, tiny_video, {"methods": "gs,nerf"}, {"methods": "gs"})
    assert winner.status_code == 202
    assert status == 422
    assert b'"code":"IDEMPOTENCY_KEY_REUSED"' in raw
    assert server.db.jobs.count_documents({}) == 1
    assert server.db["files.files"].count_documents({}) == 1
    assert server.db["files.files"].find_one()["metadata"]["job_id"] == winner.json()["id"]
