"""``vid2scene run VIDEO -o OUT``: the whole stack in one process turns a rendered video into artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.e2e.stack import REPO_ROOT, tiny_options
from vid2scene.embedded_mongo import secantus_available

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def test_run_on_a_rendered_video_downloads_the_artifacts_into_out(e2e_video: Path, tmp_path: Path) -> None:
    if not secantus_available():
        skip_or_fail("the 'local' extra (secantusdb) is not installed")
    out = tmp_path / "out"
    options = tiny_options()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vid2scene",
            "run",
            str(e2e_video),
            "-o",
            str(out),
            "--methods",
            "gs",
            "--device",
            "cpu",
            "--options",
            json.dumps(options),
            "--quiet",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    assert "'preview' preset" in run.stderr  # no GPU here: the preset is chosen and announced
    for name in ("scene.ply", "scene.splat", "flythrough-gs.mp4", "sfm.tar", "report-gs.json"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob("input.*"))  # the user's own video is not copied back
    printed = {Path(line).name for line in run.stdout.splitlines()}
    assert {"scene.ply", "scene.splat", "flythrough-gs.mp4"} <= printed
    assert {p.name for p in out.iterdir()} == printed  # the artifacts and nothing else: no database, no logs
    assert json.loads((out / "report-gs.json").read_text())


def test_run_of_a_missing_video_fails_with_a_message(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "vid2scene", "run", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert "nope.mp4 is not a file" in run.stderr
