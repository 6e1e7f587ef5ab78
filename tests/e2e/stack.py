"""The service as real processes for end-to-end tests: ``python -m web_server`` and the workers.

Every process gets its configuration from ``VID2SCENE_*`` variables, exactly as in a deployment,
and logs to a file whose tail is shown when a test fails.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vid2scene.client import JobView, Vid2SceneClient
from vid2scene.embedded_mongo import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Per-stage overrides that make a whole job take well under a minute on two CPU cores.
TINY_OPTIONS: dict[str, dict[str, Any]] = {
    "sfm": {"target_frames": 20, "max_long_side": 256, "max_num_features": 1024},
    "gs": {
        "iterations": 80,
        "max_long_side": 128,
        "sh_degree": 0,
        "max_gaussians": 20_000,
        "flythrough_seconds": 1.0,
        "flythrough_fps": 8,
        "flythrough_long_side": 96,
    },
    "nerf": {
        "iterations": 80,
        "max_long_side": 64,
        "batch_rays": 512,
        "n_voxels_init": 32**3,
        "n_voxels_final": 48**3,
        "flythrough_seconds": 1.0,
        "flythrough_fps": 8,
        "flythrough_long_side": 64,
    },
}


def tiny_options(methods: tuple[str, ...] = ("gs",), **gs: Any) -> dict[str, dict[str, Any]]:
    """:data:`TINY_OPTIONS` for sfm and ``methods`` only (the server refuses options of stages not run),
    with ``gs`` overrides on top."""
    options = {stage: dict(TINY_OPTIONS[stage]) for stage in ("sfm", *methods)}
    if gs:
        options["gs"].update(gs)
    return options


@dataclass
class ManagedProcess:
    """One service process; its output goes to ``log_path``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process (a no-op when it already runs)."""
        if self.alive:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {' '.join(self.argv)} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the process vanishes without any cleanup (a crashed machine)."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``."""
        if not self.alive:
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the process's output."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class ServiceStack:
    """A web server process and worker processes sharing one MongoDB database and one broker.

    Args:
        base_dir: logs and per-process scratch space.
        mongo_url: the MongoDB-wire server.
        amqp_url: the RabbitMQ broker.
        lease_s: stage lease; short so that a lost worker is noticed quickly.
    """

    base_dir: Path
    mongo_url: str
    amqp_url: str
    lease_s: float = 6.0
    db_name: str = field(default_factory=lambda: f"e2e_{secrets.token_hex(4)}")
    queue_prefix: str = field(default_factory=lambda: f"e2e-{secrets.token_hex(4)}.")
    port: int = field(default_factory=free_port)
    worker_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    signing_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    api_key: str | None = None
    server: ManagedProcess | None = None
    workers: list[ManagedProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The web server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def env(self, role: str, **extra: str) -> dict[str, str]:
        """The environment of one process: ``VID2SCENE_*`` settings shared by all, plus ``extra``."""
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "VID2SCENE_MODE": "service",
            "VID2SCENE_MONGO_URL": self.mongo_url,
            "VID2SCENE_MONGO_DB": self.db_name,
            "VID2SCENE_AMQP_URL": self.amqp_url,
            "VID2SCENE_QUEUE_PREFIX": self.queue_prefix,
            "VID2SCENE_SERVER_URL": self.url,
            "VID2SCENE_WORKER_TOKEN": self.worker_token,
            "VID2SCENE_SIGNING_SECRET": self.signing_secret,
            "VID2SCENE_HOST": "127.0.0.1",
            "VID2SCENE_PORT": str(self.port),
            "VID2SCENE_DATA_DIR": str(self.base_dir / "data" / role),
            "VID2SCENE_LEASE_S": str(self.lease_s),
            "VID2SCENE_HEARTBEAT_S": "1",
            "VID2SCENE_REAPER_INTERVAL_S": "1",
            "VID2SCENE_RETRY_BACKOFF_S": "0.5",
            "VID2SCENE_UNCLAIMED_REQUEUE_S": "20",
            "VID2SCENE_DEVICE": "cpu",
            "VID2SCENE_OPENAPI_INTERNAL": "true",  # the worker API fuzz reads its schema
        }
        env.update(extra)
        return env

    # --- processes ------------------------------------------------------------------------------

    def start_server(self, timeout_s: float = 60.0) -> ManagedProcess:
        """Start ``python -m web_server`` and wait until ``/readyz`` answers 200."""
        if self.server is None:
            self.server = ManagedProcess(
                "web_server",
                [sys.executable, "-m", "web_server"],
                self.env("web_server"),
                self.base_dir / "logs" / "web_server.log",
            )
        self.server.start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return self.server
            except httpx.TransportError:
                pass
            if not self.server.alive or time.monotonic() > deadline:
                raise RuntimeError(f"web server did not become ready:\n{self.server.log_tail()}")
            time.sleep(0.2)

    def start_worker(self, stage: str, index: int | None = None) -> ManagedProcess:
        """Start ``python -m <stage>_worker`` with its own worker id and scratch dir."""
        index = len(self.workers) if index is None else index
        worker_id = f"{stage}-{index}"
        extra = {"VID2SCENE_WORKER_ID": worker_id}
        if stage in ("gs", "nerf"):
            extra["OMP_NUM_THREADS"] = "1"  # two training workers share two cores
        worker = ManagedProcess(
            worker_id,
            [sys.executable, "-m", f"{stage}_worker"],
            self.env(worker_id, **extra),
            self.base_dir / "logs" / f"{worker_id}.log",
        ).start()
        self.workers.append(worker)
        return worker

    def start_held_sfm_worker(self, go_file: Path) -> ManagedProcess:
        """Start ``tests.e2e.held_stage_worker``: a real sfm worker process whose stage holds until ``go_file`` exists."""
        worker_id = f"held-sfm-{len(self.workers)}"
        worker = ManagedProcess(
            worker_id,
            [sys.executable, "-m", "tests.e2e.held_stage_worker"],
            self.env(worker_id, VID2SCENE_WORKER_ID=worker_id, V2S_TEST_GO_FILE=str(go_file)),
            self.base_dir / "logs" / f"{worker_id}.log",
        ).start()
        self.workers.append(worker)
        return worker

    def create_api_key(self, owner: str) -> str:
        """A new API key for ``owner``, made with the admin command ``python -m web_server keys create``."""
        done = subprocess.run(
            [sys.executable, "-m", "web_server", "keys", "create", "--owner", owner],
            env=self.env("admin"),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def client(self, api_key: str | None = None) -> Vid2SceneClient:
        """An API client with ``api_key`` (the stack's default key when None)."""
        return Vid2SceneClient(self.url, api_key or self.api_key)

    def stop(self) -> None:
        """Stop every process."""
        for worker in self.workers:
            worker.stop()
        if self.server is not None:
            self.server.stop()

    def logs(self) -> str:
        """The tails of every process's output (for failure messages)."""
        parts = [p for p in [self.server, *self.workers] if p is not None]
        return "\n".join(f"----- {p.name} -----\n{p.log_tail()}" for p in parts)

    def wait_for(self, client: Vid2SceneClient, job_id: str, predicate: Any, *, timeout_s: float) -> JobView:
        """Poll a job until ``predicate(job)`` holds; fails with the service logs after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = client.get(job_id)
            if predicate(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} never reached the expected state: {job!r}\n{self.logs()}")
            time.sleep(0.3)
