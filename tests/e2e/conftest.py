"""Fixtures of the end-to-end tests: a MongoDB-wire server, a rendered video, and the service as processes."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.messages import TRAINING_STAGES, StageName
from tests.e2e.stack import ServiceStack
from vid2scene.embedded_mongo import EmbeddedMongo, secantus_available

#: The rendered test video: 36 frames of 256×144 orbiting the synthetic scene.
E2E_VIDEO: dict[str, Any] = {"width": 256, "height": 144, "n_frames": 36, "fps": 24.0, "seed": 1}


class MissingWorkerError(RuntimeError):
    """A stage the end-to-end tests run has no worker package installed."""


def _worker_installed(stage: str) -> bool:
    try:
        return importlib.util.find_spec(f"{stage}_worker.__main__") is not None
    except ModuleNotFoundError:  # the package itself is missing
        return False


def training_stages(stages: tuple[StageName, ...] = TRAINING_STAGES) -> tuple[StageName, ...]:
    """The training stages the end-to-end tests run: all of ``stages`` (default: every training stage).

    No stage is dropped silently: a missing ``<stage>_worker`` package is an error, not a shorter job.

    Raises:
        MissingWorkerError: a stage's worker package is not installed (the message names its extra).
    """
    missing = [stage for stage in stages if not _worker_installed(stage)]
    if missing:
        packages = ", ".join(f"{stage}_worker" for stage in missing)
        extras = ",".join(missing)
        raise MissingWorkerError(f"{packages} not installed: pip install 'vid2scene[{extras}]'")
    return stages


@pytest.fixture(scope="session")
def e2e_mongo_url() -> Iterator[str]:
    """``VID2SCENE_MONGO_URL`` when set, else a SecantusDB server in memory for the whole session."""
    from tests.conftest import skip_or_fail

    if url := os.environ.get("VID2SCENE_MONGO_URL"):
        yield url
        return
    if not secantus_available():
        skip_or_fail("no MongoDB-wire server: install the 'local' extra or set VID2SCENE_MONGO_URL")
    with EmbeddedMongo(":memory:") as mongo:
        yield mongo.url


@pytest.fixture(scope="session")
def e2e_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small H.264 orbit video of the synthetic scene (rendered once per session)."""
    from shared.synthetic_scene import render_capture

    return render_capture(tmp_path_factory.mktemp("e2e-video"), **E2E_VIDEO).video


def start_stack(stack: ServiceStack, stages: tuple[str, ...]) -> ServiceStack:
    """Start the server, one worker per stage, and make the stack's API key; stops all on failure."""
    try:
        stack.start_server()
        for stage in stages:
            stack.start_worker(stage)
        stack.api_key = stack.create_api_key("e2e-user")
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="session")
def service(rabbitmq_url: str, e2e_mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    """The web server and one worker per stage as processes, on the shared RabbitMQ (own queue prefix)."""
    from tests.fixtures.rabbitmq import delete_topology

    stack = ServiceStack(tmp_path_factory.mktemp("service"), e2e_mongo_url, rabbitmq_url)
    start_stack(stack, ("sfm", *training_stages()))
    try:
        yield stack
    finally:
        stack.stop()
        if stack.queue_prefix:  # never delete the unprefixed queues of a shared broker
            delete_topology(rabbitmq_url, stack.queue_prefix)
