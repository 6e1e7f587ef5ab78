"""Container health check for the vid2scene images (standard library only, baked into every image).

``python healthcheck.py server`` asks the web server in this container for ``/healthz`` on
``127.0.0.1:$VID2SCENE_PORT``. ``python healthcheck.py worker`` checks what a worker needs to do
work: the web server at ``$VID2SCENE_SERVER_URL`` answers ``/healthz`` and the broker in
``$VID2SCENE_AMQP_URL`` accepts a TCP connection. Exit status 0 means healthy, 1 unhealthy.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

TIMEOUT_S = 5.0
DEFAULT_PORT = "8000"
DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
AMQP_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}


def http_ok(url: str, timeout_s: float = TIMEOUT_S) -> bool:
    """Whether a GET of ``url`` answers 2xx within ``timeout_s`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tcp_ok(host: str, port: int, timeout_s: float = TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout_s`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def broker_address(amqp_url: str) -> tuple[str, int] | None:
    """``(host, port)`` of an ``amqp://`` or ``amqps://`` URL; ``None`` for anything else (``memory://``)."""
    parts = urlsplit(amqp_url)
    if parts.scheme not in AMQP_DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname, parts.port or AMQP_DEFAULT_PORTS[parts.scheme]


def check_server(env: Mapping[str, str]) -> list[str]:
    """Problems with the web server in this container; an empty list when it is healthy."""
    url = f"http://127.0.0.1:{env.get('VID2SCENE_PORT', DEFAULT_PORT)}/healthz"
    return [] if http_ok(url) else [f"{url} did not answer 2xx"]


def check_worker(env: Mapping[str, str]) -> list[str]:
    """Problems reaching what a worker needs (web server, broker); an empty list when all are reachable."""
    problems = []
    url = env.get("VID2SCENE_SERVER_URL", DEFAULT_SERVER_URL).rstrip("/") + "/healthz"
    if not http_ok(url):
        problems.append(f"{url} did not answer 2xx")
    address = broker_address(env.get("VID2SCENE_AMQP_URL", ""))
    if address is None:
        problems.append("VID2SCENE_AMQP_URL is not an amqp:// or amqps:// URL")
    elif not tcp_ok(*address):
        problems.append(f"broker {address[0]}:{address[1]} refused or timed out")
    return problems


CHECKS = {"server": check_server, "worker": check_worker}


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run the check named by ``argv[0]`` (``server`` or ``worker``); returns the exit status."""
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: healthcheck.py {{{'|'.join(CHECKS)}}}", file=sys.stderr)
        return 2
    problems = CHECKS[argv[0]](env)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
