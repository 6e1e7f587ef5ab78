"""``docker/healthcheck.py`` (the images' HEALTHCHECK) against a real HTTP server and a real TCP listener."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.deploy.deployfiles import REPO_ROOT


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vid2scene_healthcheck", REPO_ROOT / "docker" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def broker_port() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener.getsockname()[1]
    listener.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_check_passes_when_healthz_answers_on_the_configured_port(web_port: int) -> None:
    assert healthcheck.main(["server"], {"VID2SCENE_PORT": str(web_port)}) == 0


def test_server_check_fails_when_nothing_listens() -> None:
    assert healthcheck.main(["server"], {"VID2SCENE_PORT": str(_closed_port())}) == 1


def test_worker_check_passes_when_the_server_and_the_broker_are_reachable(web_port: int, broker_port: int) -> None:
    env = {
        "VID2SCENE_SERVER_URL": f"http://127.0.0.1:{web_port}/",
        "VID2SCENE_AMQP_URL": f"amqp://u:p@127.0.0.1:{broker_port}/%2F",
    }
    assert healthcheck.main(["worker"], env) == 0


def test_worker_check_fails_when_the_broker_is_unreachable(web_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "VID2SCENE_SERVER_URL": f"http://127.0.0.1:{web_port}",
        "VID2SCENE_AMQP_URL": f"amqp://u:p@127.0.0.1:{_closed_port()}/%2F",
    }
    assert healthcheck.main(["worker"], env) == 1
    assert "broker 127.0.0.1" in capsys.readouterr().err


def test_worker_check_fails_when_the_server_is_unreachable(broker_port: int) -> None:
    env = {
        "VID2SCENE_SERVER_URL": f"http://127.0.0.1:{_closed_port()}",
        "VID2SCENE_AMQP_URL": f"amqp://u:p@127.0.0.1:{broker_port}/%2F",
    }
    assert healthcheck.main(["worker"], env) == 1


def test_broker_address_uses_the_scheme_default_port_and_refuses_other_schemes() -> None:
    assert healthcheck.broker_address("amqp://u:p@rabbitmq/%2F") == ("rabbitmq", 5672)
    assert healthcheck.broker_address("amqps://u:p@broker.example.com:5671/%2F") == ("broker.example.com", 5671)
    assert healthcheck.broker_address("memory://") is None


def test_an_unknown_check_is_a_usage_error() -> None:
    assert healthcheck.main(["database"], {}) == 2
