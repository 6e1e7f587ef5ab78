"""A small, real HTTP server speaking the worker API (``shared.worker_api``) for consumer tests.

It keeps leases the way the architecture says the web server does (a claim grants a new lease and
bumps the attempt; calls with another lease get 409) and records every call, so tests assert on what
a worker actually sent over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared.worker_api import ClaimRequest, Heartbeat, Release, StageResult

TOKEN = "test-worker-token-0123456789"

_ROUTE = re.compile(
    r"^/internal/v1/jobs/(?P<job>[^/]+)/(?:stages/(?P<stage>[^/]+)/)?(?P<what>[a-z]+)(?:/(?P<name>[^/]+))?$"
)


@dataclass
class StageState:
    """What the server knows about one stage of one job."""

    lease_id: str | None = None
    attempt: int = 0
    claims: list[ClaimRequest] = field(default_factory=list)
    heartbeats: list[Heartbeat] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    results: list[StageResult] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)  # lease ids given back
    cancelled: bool = False
    refuse_claims: str | None = None  # a ConflictCode to answer every claim with
    revoke_after_heartbeats: int | None = None  # answer 409 STALE_LEASE from this heartbeat on
    cancel_after_heartbeats: int | None = None  # answer cancelled=true from this heartbeat on
    corrupt_uploads: bool = False  # pretend every upload arrived damaged (400 DIGEST_MISMATCH)


class WorkerApiServer:
    """The fake server; ``url`` is its base URL, ``events`` an ordered log shared with tests."""

    def __init__(self, *, heartbeat_s: float = 0.2, options: dict[str, Any] | None = None, port: int = 0) -> None:
        self.heartbeat_s = heartbeat_s
        self.options = options or {}
        self.inputs: dict[tuple[str, str], bytes] = {}
        self.stages: dict[tuple[str, str], StageState] = {}
        self.events: list[str] = []
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def stage(self, job_id: str, stage: str) -> StageState:
        with self.lock:
            return self.stages.setdefault((job_id, stage), StageState())

    def start(self) -> WorkerApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler_class(server: WorkerApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            ctype = "application/octet-stream" if isinstance(body, bytes) else "application/json"
            if status >= 400:
                ctype = "application/problem+json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _conflict(self, code: str) -> None:
            self._send(409, {"type": "about:blank", "title": "Conflict", "status": 409, "code": code, "detail": code})

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def _route(self) -> tuple[str, str, str, str] | None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._body()
                self._send(401, {"title": "Unauthorized", "status": 401, "code": "UNAUTHORIZED"})
                return None
            match = _ROUTE.match(self.path)
            if match is None:
                self._send(404, {"title": "Not Found", "status": 404})
                return None
            return match["job"], match["stage"] or "", match["what"], match["name"] or ""

        def do_GET(self) -> None:
            route = self._route()
            if route is None:
                return
            job, _stage, what, name = route
            data = server.inputs.get((job, name))
            if what != "inputs" or data is None:
                self._send(404, {"title": "Not Found", "status": 404})
                return
            leases = {s.lease_id for (j, _), s in server.stages.items() if j == job}
            if self.headers.get("X-Lease-Id") not in leases:
                self._conflict("STALE_LEASE")
                return
            filename = "input.mp4" if name == "input" else name
            self._send(200, data, {"Content-Disposition": f'attachment; filename="{filename}"'})

        def do_PUT(self) -> None:
            route = self._route()
            if route is None:
                return
            job, stage, _what, name = route
            data = self._body()
            state = server.stage(job, stage)
            if self.headers.get("X-Lease-Id") != state.lease_id:
                self._conflict("STALE_LEASE")
                return
            digest = hashlib.sha256(data).hexdigest()
            if self.headers.get("X-Content-SHA256") != digest or state.corrupt_uploads:
                self._send(400, {"title": "Bad Request", "status": 400, "code": "DIGEST_MISMATCH"})
                return
            with server.lock:
                state.artifacts[name] = data
                server.events.append(f"artifact {name}")
            self._send(201, {"name": name, "size": len(data), "sha256": digest})

        def do_POST(self) -> None:
            route = self._route()
            if route is None:
                return
            job, stage, what, _name = route
            payload = json.loads(self._body())
            state = server.stage(job, stage)
            with server.lock:
                if what == "claim":
                    claim = ClaimRequest.model_validate(payload)
                    state.claims.append(claim)
                    if state.refuse_claims:
                        server.events.append(f"claim refused {state.refuse_claims}")
                        self._conflict(state.refuse_claims)
                        return
                    state.attempt += 1
                    state.lease_id = uuid.uuid4().hex
                    server.events.append(f"claim {state.attempt}")
                    lease = {
                        "lease_id": state.lease_id,
                        "expires_at": (datetime.now(UTC) + timedelta(seconds=60)).isoformat(),
                        "attempt": state.attempt,
                        "options": server.options,
                        "heartbeat_s": server.heartbeat_s,
                    }
                    self._send(200, lease)
                elif what == "heartbeat":
                    beat = Heartbeat.model_validate(payload)
                    state.heartbeats.append(beat)
                    if beat.capture is not None:
                        server.events.append(f"heartbeat capture {beat.capture.verdict}")
                    n = len(state.heartbeats)
                    if beat.lease_id != state.lease_id or (
                        state.revoke_after_heartbeats is not None and n >= state.revoke_after_heartbeats
                    ):
                        server.events.append("heartbeat refused")
                        self._conflict("STALE_LEASE")
                        return
                    if state.cancel_after_heartbeats is not None and n >= state.cancel_after_heartbeats:
                        state.cancelled = True
                    expires = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
                    self._send(200, {"expires_at": expires, "cancelled": state.cancelled})
                elif what == "result":
                    result = StageResult.model_validate(payload)
                    if result.lease_id != state.lease_id:
                        self._conflict("STALE_LEASE")
                        return
                    state.results.append(result)
                    state.lease_id = None  # the stage is finished: later calls are stale
                    server.events.append(f"result {result.status}")
                    self._send(200, {"recorded": True, "retry_scheduled": False})
                elif what == "release":
                    release = Release.model_validate(payload)
                    if release.lease_id != state.lease_id:
                        self._conflict("STALE_LEASE")
                        return
                    state.releases.append(release.lease_id)
                    state.lease_id = None
                    state.attempt -= 1  # the grant is returned, as the web server does
                    server.events.append("release")
                    self._send(204, b"")
                else:
                    self._send(404, {"title": "Not Found", "status": 404})

    return Handler
