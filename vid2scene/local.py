"""The local all-in-one stack: the whole service in one process, on loopback, for one user.

The same code as the deployment, with embedded stand-ins for the two servers: an in-process
broker (``memory://``) behind the broker interface, and SecantusDB (a MongoDB-wire server, the
optional ``local`` extra) as a child process behind the same pymongo code — or any MongoDB named
by ``VID2SCENE_MONGO_URL``. The API runs under uvicorn in a thread on a free 127.0.0.1 port
without API keys; the workers run as threads.

Example:
    >>> with LocalStack(Path(tempfile.mkdtemp())) as stack:  # doctest: +SKIP
    ...     client = Vid2SceneClient(stack.url)
"""

from __future__ import annotations

import importlib
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from shared.messages import STAGES, TRAINING_STAGES, StageName
from shared.settings import Device, Settings
from vid2scene.embedded_mongo import EmbeddedMongo, free_port

if TYPE_CHECKING:
    from shared.broker import Broker
    from shared.stage_handler import WorkerSpec
    from shared.worker_process import WorkerPool

#: The environment variable that replaces the embedded SecantusDB with a MongoDB server of your own.
MONGO_URL_ENV = "VID2SCENE_MONGO_URL"


class LocalStackError(RuntimeError):
    """A part of the local stack did not start."""


def worker_spec(stage: StageName, device: Device = "auto") -> WorkerSpec:
    """The worker kind of a stage: ``<stage>_worker.consumer.make_spec`` (given ``device`` when it takes one).

    Raises:
        LocalStackError: the worker package is not installed (e.g. the ``nerf`` extra is missing).
    """
    try:
        module = importlib.import_module(f"{stage}_worker.consumer")
    except ModuleNotFoundError as exc:
        raise LocalStackError(f"the {stage} worker is not installed: pip install 'vid2scene[{stage}]'") from exc
    # Structure from motion runs on the CPU wherever it runs: only training stages take a device.
    return module.make_spec(device=device) if stage in TRAINING_STAGES else module.make_spec()


def _check_port_free(port: int) -> None:
    """Raise :class:`LocalStackError` when something already listens on loopback ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise LocalStackError(
                f"the API did not start: port {port} on 127.0.0.1 is in use ({exc.strerror}); stop what uses it, "
                "or pass --port 0 for any free port"
            ) from exc


@dataclass
class LocalStack:
    """The service in one process: store, broker, API and workers, started and stopped together.

    Args:
        data_dir: where the database files and the workers' scratch space live (created).
        port: the API's loopback port; 0 picks a free one.
        stages: the workers to run as threads.
        device: the training device (``auto``: CUDA when available).
        mongo_url: an existing MongoDB to use instead of starting SecantusDB; defaults to
            ``VID2SCENE_MONGO_URL`` when that is set.
    """

    data_dir: Path
    port: int = 0
    stages: tuple[StageName, ...] = STAGES
    device: Device = "auto"
    mongo_url: str | None = field(default_factory=lambda: os.environ.get(MONGO_URL_ENV) or None)
    settings: Settings | None = field(default=None, init=False)
    _mongo: EmbeddedMongo | None = field(default=None, init=False, repr=False)
    _broker: Broker | None = field(default=None, init=False, repr=False)
    _server: Any = field(default=None, init=False, repr=False)
    _server_thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _workers: WorkerPool | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The API's base URL (``http://127.0.0.1:PORT``)."""
        if self.settings is None:
            raise LocalStackError("the local stack is not running")
        return f"http://127.0.0.1:{self.settings.port}"

    def start(self) -> Self:
        """Start the store, the broker, the API and the workers; returns self once the API answers."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from shared.broker import MemoryBroker

        if self.port:
            _check_port_free(self.port)
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        mongo_url = self.mongo_url
        if mongo_url is None:
            self._mongo = EmbeddedMongo(self.data_dir / "db", log_path=self.data_dir / "logs" / "secantusd.log")
            mongo_url = self._mongo.start()
        port = self.port or free_port()
        self.settings = Settings(
            mode="local",
            require_api_key=False,
            host="127.0.0.1",
            port=port,
            mongo_url=mongo_url,
            amqp_url="memory://",
            server_url=f"http://127.0.0.1:{port}",
            data_dir=self.data_dir / "scratch",
            # Secrets never leave this process; fresh ones each run keep old signed URLs from working.
            worker_token=secrets.token_urlsafe(32),
            signing_secret=secrets.token_urlsafe(32),
            device=self.device,
            heartbeat_s=2.0,
        )
        # A broker of this stack's own (not the process-wide ``memory://`` one): two stacks in one
        # process must not hand each other's messages to workers holding another token.
        self._broker = MemoryBroker()
        self._broker.declare()
        self._start_api()
        self._start_workers()

    def _start_api(self) -> None:
        import uvicorn

        from web_server.app import create_app

        assert self.settings is not None
        app = create_app(self.settings, broker=self._broker)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.settings.port, log_level="warning", access_log=False, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._server_thread = threading.Thread(target=self._server.run, name="vid2scene-api", daemon=True)
        self._server_thread.start()
        deadline = time.monotonic() + 60.0
        while not self._server.started:
            if not self._server_thread.is_alive():
                raise LocalStackError(f"the API did not start on 127.0.0.1:{self.settings.port}")
            if time.monotonic() > deadline:
                raise LocalStackError("the API did not start within 60 s")
            time.sleep(0.05)

    def _start_workers(self) -> None:
        from shared.worker_process import WorkerPool

        assert self.settings is not None and self._broker is not None
        specs = [worker_spec(stage, self.device) for stage in self.stages]
        self._workers = WorkerPool(
            specs,
            self._broker,
            self.settings.server_url,
            self.settings.worker_token,
            self.data_dir / "scratch" / "workers",
            heartbeat_s=self.settings.heartbeat_s,
        ).start()

    def stop(self) -> None:
        """Stop the workers, the API, the broker and the store, in that order; safe to call twice."""
        if self._workers is not None:
            self._workers.stop()
            self._workers = None
        if self._server is not None:
            self._server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(timeout=15)
            self._server = None
            self._server_thread = None
        if self._broker is not None:
            self._broker.close()
            self._broker = None
        if self._mongo is not None:
            self._mongo.stop()
            self._mongo = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
