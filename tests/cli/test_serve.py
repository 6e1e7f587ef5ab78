"""``vid2scene serve``: the local stack stays up, prints its URL, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import skip_or_fail
from vid2scene.embedded_mongo import secantus_available

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.service, pytest.mark.timeout(180)]


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return {int(x) for x in out.stdout.split()}


def test_serve_prints_a_working_url_and_stops_with_its_database_on_sigterm(tmp_path: Path) -> None:
    if not secantus_available():
        skip_or_fail("the 'local' extra (secantusdb) is not installed")
    process = subprocess.Popen(
        [sys.executable, "-m", "vid2scene", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the stack is up
        assert "vid2scene is serving at http://127.0.0.1:" in line, process.stderr.read() if process.stderr else ""
        url = line.split(" at ", 1)[1].split()[0]
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{url}/v1/jobs", timeout=5).status_code == 200  # local mode: no API key needed
        children = _children(process.pid)
        assert children, "SecantusDB should run as a child process"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        time.sleep(0.5)
        assert not any(Path(f"/proc/{pid}").exists() for pid in children), "SecantusDB outlived serve"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
