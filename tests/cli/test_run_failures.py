"""``vid2scene run`` fails fast on a file that is not a video and leaves nothing behind on any failure:
no ``OUT`` folder, no database or scratch folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.exit_codes import ExitCode
from tests.conftest import skip_or_fail
from vid2scene.client import ServerError, Vid2SceneClient
from vid2scene.embedded_mongo import secantus_available
from vid2scene.local import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]


def _run(video: Path, out: Path, scratch: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``vid2scene run VIDEO -o OUT`` in a process whose temporary folder is ``scratch``."""
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(scratch)}
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "vid2scene", "run", str(video), "-o", str(out), "--device", "cpu", "-q", *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    return process, time.monotonic() - started


def _leftovers(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.iterdir() if p.name.startswith("vid2scene"))


def test_run_on_a_file_that_is_not_a_video_exits_1_in_seconds_with_the_servers_message(
    api_only: LocalStack, tmp_path: Path
) -> None:
    notes = tmp_path / "notavideo.mp4"
    notes.write_text("shopping list: eggs, milk\n" * 200)
    with Vid2SceneClient(api_only.url) as client, pytest.raises(ServerError) as refused:
        client.submit(notes)  # what the server says about the same file

    run, seconds = _run(notes, tmp_path / "out", tmp_path / "tmp")
    assert run.returncode == ExitCode.ERROR == 1, run.stderr
    assert f"error: INVALID_VIDEO: {refused.value.message}" in run.stderr
    assert "local vid2scene at" not in run.stderr  # refused before any part of the stack started
    assert seconds < 30.0  # the interpreter and a probe; the stack used to take 43 s to refuse it
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path / "tmp") == []


def test_run_whose_options_the_server_refuses_leaves_no_out_folder_and_no_data_folder(
    small_video: Path, tmp_path: Path
) -> None:
    if not secantus_available():
        skip_or_fail("the 'local' extra (secantusdb) is not installed")
    options = json.dumps({"gs": {"iterations": -5}})
    run, _ = _run(small_video, tmp_path / "out", tmp_path / "tmp", "--options", options)
    assert run.returncode == ExitCode.ERROR, run.stderr
    assert "local vid2scene at" in run.stderr and "INVALID_OPTIONS" in run.stderr
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path / "tmp") == []


def test_run_whose_job_fails_exits_3_and_leaves_nothing_behind(small_video: Path, tmp_path: Path) -> None:
    if not secantus_available():
        skip_or_fail("the 'local' extra (secantusdb) is not installed")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's own file")
    # 8 frames: a valid upload that SfM refuses as too short to reconstruct
    run, _ = _run(small_video, out, tmp_path / "tmp", "--methods", "gs", "--preset", "preview")
    assert run.returncode == ExitCode.FAILED == 3, run.stderr
    assert "VIDEO_TOO_SHORT" in run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    assert _leftovers(tmp_path / "tmp") == []
