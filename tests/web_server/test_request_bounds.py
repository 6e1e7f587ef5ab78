"""Requests a client shapes at will (methods, paths) add no metrics series and no long log lines."""

from __future__ import annotations

import re
import socket

import pytest

from tests.web_server.conftest import Server, live_server
from web_server.access_log import MAX_FIELD_CHARS

HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


def _request_labels(text: str) -> set[tuple[str, str]]:
    return set(re.findall(r'^vid2scene_http_requests_total\{method="([^"]*)",route="([^"]*)"', text, re.M))


def test_unknown_methods_and_paths_leave_metrics_small_with_a_bounded_label_set(server: Server) -> None:
    for i in range(300):
        server.client.request(f"X{i}" + "M" * 2000, f"/v1/jobs/{i}")
        server.client.get(f"/no/such/route/{i}" + "p" * 500)
    text = server.client.get("/metrics").text
    assert len(text) < 10_000, len(text)
    labels = _request_labels(text)
    assert {m for m, _ in labels} <= HTTP_METHODS | {"other"}
    templates = set(server.client.get("/openapi.json").json()["paths"])
    assert {r for _, r in labels} <= templates | {"other"}
    assert ("other", "/v1/jobs/{job_id}") in labels  # the route matched; its method was unknown
    assert ("GET", "other") in labels  # no route matched
    assert re.search(r'^vid2scene_http_requests_total\{method="GET",route="other",status="404"\} 300$', text, re.M)


def test_access_log_lines_of_huge_methods_and_paths_are_capped(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_server(server.client.app, access_log=True) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        method, path = "Q" * 6000, "/" + "p" * 6000
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 404")
    out = capsys.readouterr()
    logged = [line for line in (out.out + out.err).splitlines() if "QQQQ" in line]
    assert len(logged) == 1, out
    assert len(logged[0]) < 2 * MAX_FIELD_CHARS + 200, len(logged[0])
    assert "more characters" in logged[0]
