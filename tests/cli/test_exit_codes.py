"""Every command's exit code for its success and for its main failure, from the one table
(``shared.exit_codes``, ``docs/cli.md``). The stage commands' codes are tested beside their stages
(``tests/sfm``, ``tests/gs``, ``tests/nerf``), ``run``'s in ``test_run_failures.py`` and ``tests/e2e``."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from shared.exit_codes import ExitCode, exit_code_for_error, exit_code_for_job
from tests.cli.conftest import finish_stage
from tests.conftest import skip_or_fail
from vid2scene.cli import build_parser, main
from vid2scene.embedded_mongo import secantus_available
from vid2scene.local import LocalStack

pytestmark = pytest.mark.service


def _submit(stack: LocalStack, video: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["submit", str(video), "--preset", "preview", "--server", stack.url, "-q", *extra]) == ExitCode.OK
    return capsys.readouterr().out.strip()


def test_an_error_code_means_the_same_exit_code_wherever_it_is_met() -> None:
    assert exit_code_for_error("INVALID_VIDEO") == exit_code_for_error("INVALID_OPTIONS") == ExitCode.ERROR
    assert exit_code_for_error("TOO_FEW_FRAMES_REGISTERED") == exit_code_for_error("SFM_FAILED") == ExitCode.FAILED
    assert exit_code_for_job("failed", "INVALID_VIDEO") == ExitCode.ERROR
    assert exit_code_for_job("failed", "SFM_FAILED") == exit_code_for_job("cancelled") == ExitCode.FAILED
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 130]


def test_a_usage_error_exits_1_not_argparses_2_which_means_partial(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["download", "j1"])  # -o is required
    assert info.value.code == ExitCode.ERROR
    assert "--out" in capsys.readouterr().err


def test_submit_exits_0_with_a_job_and_1_when_the_server_refuses_the_file(
    api_only: LocalStack, small_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _submit(api_only, small_video, capsys)
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("these are my notes, not a video\n" * 100)
    assert main(["submit", str(not_a_video), "--server", api_only.url, "-q"]) == ExitCode.ERROR
    assert "INVALID_VIDEO" in capsys.readouterr().err


def test_status_cancel_and_delete_exit_0_for_a_job_and_1_for_an_unknown_one(
    api_only: LocalStack, small_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = _submit(api_only, small_video, capsys)
    server = ["--server", api_only.url]
    for command in ("status", "cancel", "delete"):
        assert main([command, job_id, *server]) == ExitCode.OK, command
        assert main([command, "nosuchjob", *server]) == ExitCode.ERROR, command
        assert "NOT_FOUND" in capsys.readouterr().err


def test_jobs_exits_0_and_1_when_the_server_is_unreachable(
    api_only: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "--server", api_only.url]) == ExitCode.OK
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["jobs", "--server", f"http://127.0.0.1:{port}"]) == ExitCode.ERROR
    assert "SERVER_UNREACHABLE" in capsys.readouterr().err


def test_wait_exits_0_for_a_succeeded_job_and_3_for_a_failed_one(
    api_only: LocalStack, small_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _submit(api_only, small_video, capsys)
    finish_stage(api_only, done, "sfm", {"sfm.tar": b"scene"})
    finish_stage(api_only, done, "gs", {"scene.ply": b"ply", "scene.splat": b"splat"})
    failed = _submit(api_only, small_video, capsys)
    finish_stage(api_only, failed, "sfm", error_code="TOO_FEW_FRAMES_REGISTERED")
    assert main(["wait", done, "--server", api_only.url, "-q"]) == ExitCode.OK
    assert main(["wait", failed, "--server", api_only.url, "-q"]) == ExitCode.FAILED
    assert "TOO_FEW_FRAMES_REGISTERED" in capsys.readouterr().err


def test_keys_create_exits_0_and_revoking_an_unknown_key_exits_1(
    mongo_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VID2SCENE_MONGO_URL", mongo_url)
    monkeypatch.setenv("VID2SCENE_MONGO_DB", f"cli-keys-{uuid.uuid4().hex[:8]}")
    assert main(["keys", "create", "--owner", "alice"]) == ExitCode.OK
    assert capsys.readouterr().out.strip()  # the token, shown once
    assert main(["keys", "revoke", "no-such-key"]) == ExitCode.ERROR
    assert "no active key" in capsys.readouterr().err


def test_serve_exits_1_when_its_port_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not secantus_available():
        skip_or_fail("the 'local' extra (secantusdb) is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")])
    assert code == ExitCode.ERROR
    assert "did not start" in capsys.readouterr().err
