"""SecantusDB, a MongoDB-wire-compatible server from PyPI, run as a child process for the local mode.

SecantusDB is licensed GPL-2.0-only AND CC-BY-4.0, so it is the optional ``local`` extra and never
a dependency of the services: it runs as a separate program that our pymongo code talks to over
the wire, exactly as it would talk to ``mongod``.
"""

from __future__ import annotations

import functools
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Self

INSTALL_HINT = (
    "The local mode stores jobs in SecantusDB, an optional extra. Install it with\n"
    "    pip install 'vid2scene[local]'\n"
    "or point VID2SCENE_MONGO_URL at a MongoDB server you run (e.g. mongodb://127.0.0.1:27017)."
)


class EmbeddedMongoError(RuntimeError):
    """SecantusDB is not installed, or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on at the moment of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def secantus_available() -> bool:
    """Whether the ``secantus`` package (the ``local`` extra) is installed."""
    return importlib.util.find_spec("secantus") is not None


def _die_with_parent_hook() -> Callable[[], object] | None:
    """A ``preexec_fn`` that asks Linux to SIGTERM the child when the thread that started it exits.

    Keeps a SecantusDB from outliving a ``vid2scene run`` that was killed with SIGKILL. Everything
    is resolved here, in the parent: the hook itself only makes one system call after ``fork``.
    """
    if sys.platform != "linux":
        return None
    import ctypes

    pr_set_pdeathsig = 1
    return functools.partial(ctypes.CDLL(None, use_errno=True).prctl, pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedMongo:
    """A SecantusDB server on a free loopback port, storing its files in ``storage_dir``.

    Args:
        storage_dir: WiredTiger home (created; reopened intact next time), or ``":memory:"``.
        log_path: where the server's output goes (None: discarded).
        start_timeout_s: how long to wait for it to answer ``ping``.

    On Linux the server is stopped by the kernel when the thread that started it exits (so start
    it from a thread that lives as long as it should, e.g. the main thread).

    Example:
        >>> with EmbeddedMongo(Path("data/db")) as mongo:  # doctest: +SKIP
        ...     pymongo.MongoClient(mongo.url).admin.command("ping")
    """

    def __init__(self, storage_dir: Path | str, *, log_path: Path | None = None, start_timeout_s: float = 60.0) -> None:
        self.storage_dir = storage_dir
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.host = "127.0.0.1"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``mongodb://`` URL of the running server."""
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self) -> str:
        """Start the server and wait until it answers; returns its URL.

        Raises:
            EmbeddedMongoError: SecantusDB is not installed, or exited or stayed silent while starting.
        """
        if not secantus_available():
            raise EmbeddedMongoError(INSTALL_HINT)
        if self.storage_dir != ":memory:":
            Path(self.storage_dir).mkdir(parents=True, exist_ok=True)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        for _ in range(3):  # the free port can be taken between asking and binding
            self.port = free_port(self.host)
            argv = [
                sys.executable,
                "-m",
                "secantus",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--storage-path",
                str(self.storage_dir),
                "--log-level",
                "WARNING",
            ]
            self._process = subprocess.Popen(
                argv,
                preexec_fn=_die_with_parent_hook(),
                stdin=subprocess.DEVNULL,
                stdout=self._log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            )
            if self._wait_ready():
                return self.url
        self.stop()
        where = f"; see {self.log_path}" if self.log_path else ""
        raise EmbeddedMongoError(f"SecantusDB did not start on {self.host}{where}")

    def _wait_ready(self) -> bool:
        import pymongo

        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with pymongo.MongoClient[dict[str, Any]](self.url, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                return True
            except pymongo.errors.PyMongoError:
                time.sleep(0.1)
        self._process.kill()
        self._process.wait()
        return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
