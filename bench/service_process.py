"""A web server process for the service benchmarks: ``python -m web_server`` on loopback, SecantusDB as the store.

The server runs in local mode (no API keys, in-process broker, no workers), so jobs stay queued and
the benchmarks measure the web server alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from vid2scene.embedded_mongo import EmbeddedMongo, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory from ``/proc/<pid>/status`` (``VmHWM`` is its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


@dataclass
class ServerProcess:
    """``python -m web_server`` with its own SecantusDB, started by :meth:`start`."""

    data_dir: Path
    max_upload_bytes: int = 4 * 1024**3
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    mongo: EmbeddedMongo | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Start the store and the server; returns once ``/readyz`` answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.mongo = EmbeddedMongo(self.data_dir / "db", log_path=self.data_dir / "secantusd.log")
        self.port = free_port()
        env = {
            **os.environ,
            "VID2SCENE_MODE": "local",
            "VID2SCENE_REQUIRE_API_KEY": "false",
            "VID2SCENE_MONGO_URL": self.mongo.start(),
            "VID2SCENE_AMQP_URL": "memory://",
            "VID2SCENE_HOST": "127.0.0.1",
            "VID2SCENE_PORT": str(self.port),
            "VID2SCENE_SERVER_URL": self.url,
            "VID2SCENE_DATA_DIR": str(self.data_dir / "server"),
            "VID2SCENE_MAX_UPLOAD_BYTES": str(self.max_upload_bytes),
        }
        log = (self.data_dir / "web_server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "web_server"], env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the web server did not start; see {self.data_dir / 'web_server.log'}")

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        """Stop the server and its store."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        if self.mongo is not None:
            self.mongo.stop()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
