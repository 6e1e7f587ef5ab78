"""Test configuration: fixtures live in ``tests/fixtures/`` by topic and are loaded here."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.mongo",
    "tests.fixtures.rabbitmq",
]

IN_CI = bool(os.environ.get("CI"))


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test whose service or file is absent locally; fail it in CI, where everything must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)
