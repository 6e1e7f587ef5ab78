"""Where workers run: threads in this process (:class:`WorkerPool`, the local mode) or a worker process
(:func:`run_worker_process`, :func:`worker_main` behind ``python -m <stage>_worker``).

Each runs :class:`~shared.worker_loop.Worker` consumers; a worker process exits at the latest
``stop_grace_s`` after SIGTERM, whatever its stage is doing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from shared.broker import Broker, make_broker
from shared.cpu_threads import configure_cpu_threads
from shared.messages import StageName
from shared.settings import Settings
from shared.stage_handler import WorkerSpec
from shared.worker_client import WorkerAuthError, WorkerClient
from shared.worker_loop import Worker

log = logging.getLogger(__name__)


def default_worker_id(stage: StageName, index: int | None = None) -> str:
    """``host:pid:stage`` (with ``-index`` for in-process pools): unique per worker."""
    suffix = "" if index is None else f"-{index}"
    return f"{socket.gethostname()}:{os.getpid()}:{stage}{suffix}"


class WorkerPool:
    """Workers as threads in this process (the local mode), stoppable.

    Args:
        specs: the worker kinds to run.
        broker: the broker they consume from (the in-process broker, or RabbitMQ).
        server_url: the web server's base URL.
        worker_token: the worker token.
        scratch_root: parent of the per-job scratch folders.
        replicas: threads per worker kind.
        heartbeat_s: heartbeat at most this far apart.
    """

    def __init__(
        self,
        specs: Sequence[WorkerSpec],
        broker: Broker,
        server_url: str,
        worker_token: str,
        scratch_root: Path,
        *,
        replicas: int = 1,
        heartbeat_s: float | None = None,
    ) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._clients: list[WorkerClient] = []
        self.workers: list[Worker] = []
        for spec in specs:
            for index in range(replicas):
                client = WorkerClient(server_url, worker_token, stop=self._stop)
                self._clients.append(client)
                self.workers.append(
                    Worker(
                        spec,
                        broker,
                        client,
                        worker_id=default_worker_id(spec.stage, index),
                        scratch_root=scratch_root / spec.stage,
                        heartbeat_s=heartbeat_s,
                    )
                )

    def start(self) -> WorkerPool:
        """Start one thread per worker; returns ``self``."""
        for worker in self.workers:
            thread = threading.Thread(target=self._run, args=(worker,), name=worker.worker_id, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, worker: Worker) -> None:
        try:
            worker.run(self._stop)
        except BaseException as exc:
            log.exception("worker %s stopped with an error", worker.worker_id)
            self.errors.append(exc)

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop every worker: running stages end at their next progress call and are requeued."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for client in self._clients:
            client.close()

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_worker_process(spec: WorkerSpec, settings: Settings | None = None, *, broker: Broker | None = None) -> int:
    """A worker process's main: read ``VID2SCENE_*`` settings, consume until SIGTERM/SIGINT.

    On SIGTERM the running stage stops at its next progress call, its lease is released and its
    message requeued unreported, so the next worker claims it at once. Calls to an unreachable
    server stop retrying at once. A stage that does not reach a progress call within
    ``settings.stop_grace_s`` is abandoned: the process exits with code 1 and the broker, seeing
    the connection close, puts the unacknowledged message back in the queue.

    Args:
        spec: the worker kind.
        settings: defaults to ``Settings()`` (the environment).
        broker: defaults to ``make_broker(settings.amqp_url, prefix=settings.queue_prefix)``; tests may
            pass a broker of their own.

    Returns:
        The exit code: 0 after a signal, 2 when the worker token was refused or the broker URL is
        in-process (``memory://`` cannot reach another process); the process ends with 1 when the
        grace period ran out.
    """
    settings = settings or Settings()
    if broker is None and settings.amqp_url.startswith("memory:"):
        log.error("VID2SCENE_AMQP_URL is %s: a worker process needs RabbitMQ (amqp://...)", settings.amqp_url)
        return 2
    stop = threading.Event()
    deadline = threading.Timer(settings.stop_grace_s, _exit_after_grace, args=(settings.stop_grace_s,))
    deadline.daemon = True

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping (at the latest in %.0f s)", signum, settings.stop_grace_s)
        stop.set()
        if deadline.ident is None:  # the first signal starts the clock
            deadline.start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    broker = broker or make_broker(settings.amqp_url, prefix=settings.queue_prefix)
    with WorkerClient(settings.server_url, settings.worker_token, stop=stop) as client:
        worker = Worker(
            spec,
            broker,
            client,
            worker_id=settings.worker_id or default_worker_id(spec.stage),
            scratch_root=settings.data_dir / "scratch" / spec.stage,
            heartbeat_s=settings.heartbeat_s,
        )
        try:
            worker.run(stop)
        except WorkerAuthError:
            return 2
        finally:
            deadline.cancel()
            with contextlib.suppress(Exception):
                broker.close()
    return 0


def _exit_after_grace(grace_s: float) -> None:
    """End the process now: the stop took longer than its grace period (the broker requeues the message)."""
    log.error(
        "the worker did not stop within %.0f s of the signal; exiting, its message goes back to the queue", grace_s
    )
    logging.shutdown()
    os._exit(1)


def worker_main(make_spec: Callable[[Settings], WorkerSpec]) -> int:
    """``python -m <stage>_worker``: logging, settings from the environment, then :func:`run_worker_process`.

    Args:
        make_spec: builds the worker kind from the settings (e.g. to pass ``settings.device``).

    Returns:
        The exit code: 2 when the settings are invalid (the message says which variable).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings().require_secrets("worker_token")
    except ValidationError as exc:
        for error in exc.errors():
            log.error("invalid settings: %s", error["msg"])
        return 2
    except ValueError as exc:
        log.error("invalid settings: %s", exc)
        return 2
    configure_cpu_threads(settings.threads)
    return run_worker_process(make_spec(settings), settings)
