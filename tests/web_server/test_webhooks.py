"""Signed webhooks end to end: a real HTTP receiver on loopback, the real app on SecantusDB.

The receiver is allow-listed (``webhook_allow_networks``) except where a test checks the SSRF rule;
backoffs are tiny so retries take tenths of a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fixtures.capture import poor_capture_report
from tests.web_server.conftest import WORKER_TOKEN, FakeWorker, Server
from tests.web_server.test_admin_cli import _run

#: Settings that let webhooks reach the loopback receiver, with retries after tenths of a second.
FAST = {
    "webhook_allow_networks": "127.0.0.1/32",
    "webhook_poll_s": 0.05,
    "webhook_retry_base_s": 0.2,
    "webhook_retry_max_s": 0.8,
    "webhook_timeout_s": 2.0,
}
WAIT_S = 30.0


def verify(secret: str, header: str, body: bytes, tolerance_s: float = 300) -> bool:
    """The receiver's check, as docs/api.md shows it: HMAC-SHA256 over ``"{t}.{body}"``, and a recent ``t``."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - timestamp) <= tolerance_s


@dataclass
class Delivery:
    """One request the receiver got."""

    at: float
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records every request and answers the next scripted status (else 200)."""

    url: str
    requests: list[Delivery] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[dict[str, Any]]:
        """The events answered 2xx, in arrival order."""
        with self.lock:
            return [d.event for d in self.requests if 200 <= d.status < 300]

    def wait_for(self, predicate: Callable[[Receiver], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {[d.event['type'] for d in self.requests]}")
            time.sleep(0.02)


@contextlib.contextmanager
def _serving(host: str = "127.0.0.1", *, url_host: str | None = None, cert: Any = None) -> Iterator[Receiver]:
    """A receiver listening on ``host`` (https with ``cert``, a ``trustme`` leaf certificate); its URL names
    ``url_host`` (default: ``host``). Stopped afterwards."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = state["receiver"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with rec.lock:
                status = rec.statuses.pop(0) if rec.statuses else rec.default_status
                rec.requests.append(Delivery(time.monotonic(), dict(self.headers.items()), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    httpd = Server((host, 0), Handler)
    scheme = "http"
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    name = url_host or (f"[{host}]" if ":" in host else host)
    state["receiver"] = Receiver(url=f"{scheme}://{name}:{httpd.server_address[1]}/hooks/vid2scene?src=test")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running receiver on 127.0.0.1 (http); stopped afterwards."""
    with _serving() as rec:
        yield rec


def _key_id(server: Server, owner: str = "alice") -> str:
    return server.keys[owner].removeprefix("v2s_").split("_", 1)[0]


def _secret(server: Server, owner: str = "alice") -> str:
    secret = server.client.app.state.store.webhook_secret(_key_id(server, owner))
    assert secret and secret.startswith("whsec_")
    return secret


def _job(server: Server, job_id: str) -> dict[str, Any]:
    response = server.client.get(f"/v1/jobs/{job_id}", headers=server.auth())
    assert response.status_code == 200, response.text
    return response.json()


def _wait_job(server: Server, job_id: str, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        job = _job(server, job_id)
        if predicate(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {job['webhook']}")
        time.sleep(0.02)


def _capture_heartbeat(server: Server, worker: FakeWorker, request: Any, lease_id: str) -> None:
    body = {
        "lease_id": lease_id,
        "progress": 0.05,
        "message": "checked",
        "capture": poor_capture_report().model_dump(mode="json"),
    }
    response = server.client.post(
        worker.url(request, "heartbeat"), json=body, headers={"Authorization": f"Bearer {WORKER_TOKEN}"}
    )
    assert response.status_code == 200, response.text


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] if e["type"] != "job.status_changed" else e["data"]["status"] for e in events]


def test_every_status_change_and_the_capture_check_arrive_signed_and_in_order(
    server_factory: Any, receiver: Receiver, tiny_video: bytes
) -> None:
    server = server_factory(**FAST)
    worker = FakeWorker(server)
    created = server.submit(tiny_video, methods="gs", webhook_url=receiver.url)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.json()["webhook"]["url"] == receiver.url
    (sfm,) = server.broker.requests_for("sfm")
    lease_id = worker.claim(sfm).json()["lease_id"]
    _capture_heartbeat(server, worker, sfm, lease_id)
    assert worker.upload(sfm, lease_id, "sfm.tar", b"t").status_code == 201
    assert worker.succeed(sfm, lease_id, ["sfm.tar"]).status_code == 200
    (gs,) = server.broker.requests_for("gs")
    worker.run_stage(gs, {"scene.ply": b"ply"})
    receiver.wait_for(lambda r: len(r.delivered()) == 4, "four events")

    events = receiver.delivered()
    assert _types(events) == ["queued", "running", "job.capture_checked", "succeeded"]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4]
    assert [e["data"].get("previous_status") for e in events if e["type"] == "job.status_changed"] == [
        None,
        "queued",
        "running",
    ]
    assert events[2]["data"]["capture"]["verdict"] == "poor"
    assert all(e["job"]["id"] == job_id and e["job"]["url"].endswith(f"/v1/jobs/{job_id}") for e in events)
    secret = _secret(server)
    for delivery in receiver.requests:
        assert delivery.headers["Content-Type"] == "application/json"
        assert delivery.headers["Vid2Scene-Event-Id"] == delivery.event["id"]
        assert delivery.headers["Vid2Scene-Event-Type"] == delivery.event["type"]
        assert delivery.headers["Host"] == receiver.url.split("/")[2]
        assert verify(secret, delivery.headers["Vid2Scene-Signature"], delivery.body)
        assert not verify(secret + "x", delivery.headers["Vid2Scene-Signature"], delivery.body)
        assert not verify(secret, delivery.headers["Vid2Scene-Signature"], delivery.body + b" ")
    assert not verify(
        _secret(server, "bob"), receiver.requests[0].headers["Vid2Scene-Signature"], receiver.requests[0].body
    )

    job = _wait_job(server, job_id, lambda j: all(e["state"] == "delivered" for e in j["webhook"]["events"]), "record")
    assert [e["id"] for e in job["webhook"]["events"]] == [e["id"] for e in events]
    for record in job["webhook"]["events"]:
        assert (record["attempts"], record["last_status"], record["last_error"]) == (1, 200, None)
        assert record["delivered_at"] is not None and record["next_attempt_at"] is None


def test_a_failing_receiver_gets_retries_with_growing_backoff_and_later_events_wait(
    server_factory: Any, receiver: Receiver, tiny_video: bytes
) -> None:
    server = server_factory(**FAST)
    worker = FakeWorker(server)
    receiver.statuses = [500, 500, 503]
    job_id = server.submit(tiny_video, methods="gs", webhook_url=receiver.url).json()["id"]
    receiver.wait_for(lambda r: len(r.requests) >= 1, "the first attempt")
    (sfm,) = server.broker.requests_for("sfm")
    assert worker.claim(sfm).status_code == 200  # "running" is recorded while "queued" still fails
    receiver.wait_for(lambda r: len(r.delivered()) == 2, "both events")

    kinds = [(_types([d.event])[0], d.status) for d in receiver.requests]
    assert kinds == [("queued", 500), ("queued", 500), ("queued", 503), ("queued", 200), ("running", 200)]
    times = [d.at for d in receiver.requests[:4]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.2 * 0.9 and gaps[1] >= 0.4 * 0.9 and gaps[2] >= 0.8 * 0.9, gaps  # 0.2, 0.4, 0.8 s
    assert len({d.event["id"] for d in receiver.requests[:4]}) == 1  # the same event, the same body
    assert len({d.body for d in receiver.requests[:4]}) == 1
    job = _wait_job(server, job_id, lambda j: j["webhook"]["events"][-1]["state"] == "delivered", "delivered")
    first = job["webhook"]["events"][0]
    assert (first["state"], first["attempts"], first["last_status"]) == ("delivered", 4, 200)


def test_an_event_is_given_up_after_the_last_attempt_and_the_next_one_follows(
    server_factory: Any, receiver: Receiver, tiny_video: bytes
) -> None:
    server = server_factory(**{**FAST, "webhook_max_attempts": 2})
    worker = FakeWorker(server)
    receiver.statuses = [500, 500]
    job_id = server.submit(tiny_video, methods="gs", webhook_url=receiver.url).json()["id"]
    failed = _wait_job(server, job_id, lambda j: j["webhook"]["events"][0]["state"] == "failed", "give-up")
    record = failed["webhook"]["events"][0]
    assert (record["attempts"], record["last_status"], record["last_error"]) == (2, 500, "HTTP 500")
    assert record["delivered_at"] is None and record["next_attempt_at"] is None
    (sfm,) = server.broker.requests_for("sfm")
    assert worker.claim(sfm).status_code == 200
    receiver.wait_for(lambda r: len(r.delivered()) == 1, "the next event")
    assert _types(receiver.delivered()) == ["running"]
    assert len(receiver.requests) == 3


def test_an_event_is_given_up_once_it_is_older_than_the_max_age_whatever_attempts_are_left(
    server_factory: Any, receiver: Receiver, tiny_video: bytes
) -> None:
    server = server_factory(**{**FAST, "webhook_max_age_s": 2.0, "webhook_retry_max_s": 0.2})
    receiver.default_status = 500
    before = time.monotonic()
    job_id = server.submit(tiny_video, methods="gs", webhook_url=receiver.url).json()["id"]
    failed = _wait_job(server, job_id, lambda j: j["webhook"]["events"][0]["state"] == "failed", "give-up by age")
    record = failed["webhook"]["events"][0]
    assert 2 <= record["attempts"] < server.settings.webhook_max_attempts, record  # attempts were left
    assert (record["last_status"], record["next_attempt_at"]) == (500, None)
    times = [d.at for d in receiver.requests]
    assert len(times) == record["attempts"] and times[-1] - before >= 0.95 * 2.0  # the last one at the deadline
    time.sleep(0.5)
    assert len(receiver.requests) == record["attempts"]  # nothing more is sent


def test_pending_deliveries_survive_a_server_restart(
    server_factory: Any, receiver: Receiver, tiny_video: bytes
) -> None:
    receiver.default_status = 503  # down while the first server runs
    first = server_factory(**{**FAST, "webhook_retry_base_s": 0.3, "webhook_retry_max_s": 0.3})
    job_id = first.submit(tiny_video, methods="gs", webhook_url=receiver.url).json()["id"]
    (sfm,) = first.broker.requests_for("sfm")
    assert FakeWorker(first).claim(sfm).status_code == 200
    receiver.wait_for(lambda r: len(r.requests) >= 2, "failed attempts")
    first.client.__exit__(None, None, None)  # the server stops: its lifespan ends the delivery loop
    stopped_with = len(receiver.requests)
    time.sleep(0.6)
    assert len(receiver.requests) == stopped_with  # nothing in memory keeps sending
    stored = first.db["jobs"].find_one({"_id": job_id})["webhook"]
    assert [e["state"] for e in stored["events"]] == ["pending", "pending"]
    assert stored["next_attempt_at"] is not None

    receiver.default_status = 200
    second = server_factory(**FAST)  # a new app on the same database
    second.keys = first.keys
    receiver.wait_for(lambda r: len(r.delivered()) == 2, "delivery after the restart")
    assert _types(receiver.delivered()) == ["queued", "running"]
    assert all(verify(_secret(second), d.headers["Vid2Scene-Signature"], d.body) for d in receiver.requests)
    job = _wait_job(second, job_id, lambda j: j["webhook"]["events"][-1]["state"] == "delivered", "record")
    assert job["webhook"]["events"][0]["attempts"] >= 2


def test_a_loopback_webhook_is_refused_at_creation_without_the_allow_list(
    server: Server, receiver: Receiver, tiny_video: bytes
) -> None:
    for url in (receiver.url, "http://localhost:9/x", "http://[::1]:9/", "http://169.254.169.254/latest/meta-data"):
        response = server.submit(tiny_video, webhook_url=url)
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == "WEBHOOK_URL_NOT_ALLOWED", problem
        assert "VID2SCENE_WEBHOOK_ALLOW_NETWORKS" in problem["detail"]
    for url in ("ftp://example.com/x", "https://user:pw@example.com/", "https://example.com/" + "a" * 2100):
        response = server.submit(tiny_video, webhook_url=url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["code"] == "VALIDATION_ERROR"
    assert server.db["jobs"].count_documents({}) == 0
    assert receiver.requests == []


def test_a_loopback_target_is_refused_at_delivery_and_recorded(
    server_factory: Any, receiver: Receiver, tiny_video: bytes
) -> None:
    receiver.default_status = 500  # whatever the first server tries fails
    allowed = server_factory(**FAST)  # accepts the loopback URL
    job_id = allowed.submit(tiny_video, webhook_url=receiver.url).json()["id"]
    allowed.client.__exit__(None, None, None)
    receiver.requests.clear()
    refusing = server_factory(**{**FAST, "webhook_allow_networks": ""})
    refusing.keys = allowed.keys
    job = _wait_job(refusing, job_id, lambda j: j["webhook"]["events"][0]["state"] != "pending", "refusal")
    record = job["webhook"]["events"][0]
    assert record["state"] == "failed" and record["attempts"] >= 1 and record["last_status"] is None
    assert "127.0.0.1 (loopback)" in record["last_error"]
    assert receiver.requests == []


def test_a_rotated_secret_signs_the_next_events(server_factory: Any, receiver: Receiver, tiny_video: bytes) -> None:
    from web_server.api_keys import rotate_webhook_secret

    server = server_factory(**FAST)
    old = _secret(server)
    job_id = server.submit(tiny_video, webhook_url=receiver.url).json()["id"]
    receiver.wait_for(lambda r: len(r.delivered()) == 1, "the first event")
    new = rotate_webhook_secret(server.client.app.state.store, _key_id(server))
    assert new is not None and new != old and _secret(server) == new
    (sfm,) = server.broker.requests_for("sfm")
    assert FakeWorker(server).claim(sfm).status_code == 200
    receiver.wait_for(lambda r: len(r.delivered()) == 2, "the second event")
    before, after = receiver.requests
    assert verify(old, before.headers["Vid2Scene-Signature"], before.body)
    assert verify(new, after.headers["Vid2Scene-Signature"], after.body)
    assert not verify(old, after.headers["Vid2Scene-Signature"], after.body)
    # The server records the delivery just after the receiver answered: wait for the record.
    _wait_job(server, job_id, lambda j: j["webhook"]["events"][1]["state"] == "delivered", "the second record")


def test_keys_create_prints_a_webhook_secret_and_rotate_replaces_it(mongo_url: str, mongo_db: Any) -> None:
    from web_server.store import Store

    created = _run(mongo_url, mongo_db.name, "keys", "create", "--owner", "erin")
    assert created.returncode == 0, created.stderr
    store = Store(mongo_db)
    (key,) = mongo_db["api_keys"].find({"owner": "erin"})
    first = store.webhook_secret(key["_id"])
    assert first and f"webhook secret (verifies this key's webhooks): {first}" in created.stderr
    assert created.stdout.strip().startswith("v2s_")  # stdout stays the token alone
    rotated = _run(mongo_url, mongo_db.name, "keys", "rotate-webhook-secret", key["_id"])
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == store.webhook_secret(key["_id"]) != first
    assert _run(mongo_url, mongo_db.name, "keys", "rotate-webhook-secret", "nokey").returncode == 1


def test_the_openapi_schema_describes_webhook_url_and_the_jobs_webhook(server: Server) -> None:
    schema = server.client.get("/openapi.json").json()
    form = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["webhook_url"]["maxLength"] == 2048
    components = schema["components"]["schemas"]
    assert "webhook" in components["JobPublic"]["properties"]
    event = components["WebhookEventPublic"]["properties"]
    assert {"attempts", "last_status", "last_error", "delivered_at", "state"} <= set(event)


def test_the_ssrf_rule_refuses_every_non_public_address_unless_its_network_is_allowed() -> None:
    import ipaddress

    from shared.backoff import backoff_delay_s
    from web_server.webhook_targets import WebhookUrlError, check_addresses, parse_webhook_url, refusal

    ip = ipaddress.ip_address
    allowed = [ipaddress.ip_network("10.1.0.0/16")]
    kinds = {
        "127.0.0.2": "loopback",
        "::1": "loopback",
        "::ffff:127.0.0.1": "loopback",
        "10.2.0.1": "private",
        "192.168.1.1": "private",
        "169.254.169.254": "link-local",  # cloud metadata
        "fe80::1": "link-local",
        "0.0.0.0": "unspecified",
        "224.0.0.1": "multicast",
    }
    for address, why in kinds.items():
        assert refusal(ip(address), allowed) == why, address
    assert refusal(ip("10.1.2.3"), allowed) is None
    assert refusal(ip("93.184.216.34"), []) is None
    assert check_addresses("h", [ip("93.184.216.34")], []) == ip("93.184.216.34")
    with pytest.raises(WebhookUrlError, match=r"10\.2\.0\.1 \(private\)"):
        check_addresses("h", [ip("93.184.216.34"), ip("10.2.0.1")], allowed)  # every address counts
    target = parse_webhook_url("https://Hooks.example.com/a/b?x=1")
    assert (target.host, target.port, target.target) == ("hooks.example.com", 443, "/a/b?x=1")
    for bad in ("javascript:alert(1)", "http:///x", "http://h:99999/", "http://h /x"):
        with pytest.raises(WebhookUrlError):
            parse_webhook_url(bad)
    assert [backoff_delay_s(n, 10, 3600) for n in (1, 2, 3, 10, 11)] == [10, 20, 40, 3600, 3600]


def test_https_webhooks_check_the_certificate_against_the_host_name_while_connecting_to_the_checked_address(
    server_factory: Any, tiny_video: bytes, tmp_path: Any
) -> None:
    """``https://localhost:…``: the delivery connects to the address it checked, sends the host name for SNI
    and verifies the certificate against it, trusting ``webhook_ca_file`` beside the public CAs."""
    import trustme

    from web_server.webhook_targets import check_addresses, resolve

    networks = "127.0.0.0/8,::1/128"
    server = server_factory(**{**FAST, "webhook_allow_networks": networks})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop of its own: this thread may be running one
        resolved = pool.submit(asyncio.run, resolve("localhost", 443)).result()
    address = check_addresses("localhost", resolved, server.settings.webhook_networks)
    ca = trustme.CA()
    ca_file = tmp_path / "internal-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def first_error(srv: Server, url: str) -> str:
        job_id = srv.submit(tiny_video, methods="gs", webhook_url=url).json()["id"]
        job = _wait_job(srv, job_id, lambda j: j["webhook"]["events"][0]["attempts"] >= 1, "an attempt")
        record = job["webhook"]["events"][0]
        assert record["state"] != "delivered" and record["last_status"] is None, record
        return str(record["last_error"])

    with (
        _serving(str(address), url_host="localhost", cert=ca.issue_cert("localhost")) as right,
        _serving(str(address), url_host="localhost", cert=ca.issue_cert("receiver.internal")) as wrong,
    ):
        # The right certificate, but its CA is not one this server was told to trust: refused. (Apps of one
        # test share the database and each sends what is due, so this runs before a trusting app exists.)
        assert "certificate" in first_error(server, right.url).lower()

        trusting = server_factory(**{**FAST, "webhook_allow_networks": networks, "webhook_ca_file": ca_file})
        delivered = trusting.submit(tiny_video, methods="gs", webhook_url=right.url).json()["id"]
        right.wait_for(lambda r: any(d["job"]["id"] == delivered for d in r.delivered()), "an event over TLS")
        hit = next(d for d in right.requests if d.event["job"]["id"] == delivered)
        assert hit.headers["Host"] == right.url.split("/")[2]
        assert verify(_secret(trusting), hit.headers["Vid2Scene-Signature"], hit.body)

        # A certificate for another name, although signed by the trusted CA: refused.
        assert "certificate" in first_error(trusting, wrong.url).lower()
        assert wrong.requests == [] and len(right.requests) == len(right.delivered())
