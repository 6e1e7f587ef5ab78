"""Client commands keep the terminal for their own output: HTTP request logs only with ``-v``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.exit_codes import ExitCode
from vid2scene.cli import log_level, parse_args
from vid2scene.local import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.service


def _vid2scene(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "vid2scene", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_a_client_command_prints_no_http_log_lines_without_v_and_prints_them_with_v(
    api_only: LocalStack, small_video: Path
) -> None:
    submitted = _vid2scene("submit", str(small_video), "--preset", "preview", "--server", api_only.url)
    assert submitted.returncode == ExitCode.OK, submitted.stderr
    assert "httpx" not in submitted.stderr and "HTTP Request" not in submitted.stderr
    job_id = submitted.stdout.strip()

    quiet = _vid2scene("status", job_id, "--server", api_only.url)
    assert quiet.returncode == ExitCode.OK
    assert quiet.stderr == ""

    for verbose in (["-v", "status", job_id], ["status", job_id, "-v"]):  # before or after the command
        shown = _vid2scene(*verbose, "--server", api_only.url)
        assert shown.returncode == ExitCode.OK
        assert "INFO httpx: HTTP Request: GET" in shown.stderr
        assert f"/v1/jobs/{job_id}" in shown.stderr


def test_v_counts_up_from_warnings_to_information_to_debugging() -> None:
    assert [log_level(n) for n in (0, 1, 2, 3)] == [logging.WARNING, logging.INFO, logging.DEBUG, logging.DEBUG]
    assert parse_args(["-v", "status", "j1", "-v"]).verbose == 2
    assert parse_args(["status", "j1", "-vv"]).verbose == 2
    assert parse_args(["status", "j1"]).verbose == 0
