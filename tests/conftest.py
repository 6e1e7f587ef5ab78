"""Test configuration: fixtures live in ``tests/fixtures/`` by topic and are loaded here."""

from __future__ import annotations

import importlib
import os
from typing import Any, NoReturn

import pytest

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.mongo",
    "tests.fixtures.rabbitmq",
]

IN_CI = bool(os.environ.get("CI"))


def skip_or_fail(reason: str, *, allow_module_level: bool = False) -> NoReturn:
    """Skip a test whose service, package or file is absent locally; fail it in CI, where everything must run.

    Args:
        reason: what is missing (and how to get it).
        allow_module_level: skip the whole module (called at import time of a test module).
    """
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it)", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def import_or_skip(module: str, reason: str) -> Any:
    """Import ``module``; when it is not installed, :func:`skip_or_fail` (usable at module level).

    Args:
        module: the module to import (``"cv2"``).
        reason: which extra or package provides it.

    Returns:
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        skip_or_fail(f"{module} is not installed: {reason}", allow_module_level=True)
