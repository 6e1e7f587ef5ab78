"""Argument parsing and exit codes of the ``vid2scene`` client and local commands."""

from __future__ import annotations

import argparse

import pytest

from shared.stage_cli import choose_preset
from vid2scene.cli import build_parser, main
from vid2scene.client import JobView
from vid2scene.client_commands import exit_code_for, parse_methods, parse_options
from vid2scene.local_commands import merge_options


def test_methods_list_parses_and_deduplicates() -> None:
    assert parse_methods("gs, nerf,gs") == ["gs", "nerf"]


def test_unknown_method_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_methods("gs,mesh")


def test_options_must_be_a_json_object() -> None:
    assert parse_options('{"gs": {"iterations": 5}}') == {"gs": {"iterations": 5}}
    with pytest.raises(argparse.ArgumentTypeError):
        parse_options("[1, 2]")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_options("{not json")


def test_exit_code_says_how_the_job_ended() -> None:
    codes = {s: exit_code_for(JobView(id="j", status=s)) for s in ("succeeded", "partial", "failed", "cancelled")}
    assert codes == {"succeeded": 0, "partial": 2, "failed": 3, "cancelled": 3}


def test_every_client_command_is_registered() -> None:
    parser = build_parser()
    for argv in (
        ["submit", "v.mp4", "--methods", "gs,nerf", "--preset", "preview"],
        ["status", "j1"],
        ["wait", "j1"],
        ["download", "j1", "-o", "out"],
        ["cancel", "j1"],
        ["run", "v.mp4", "-o", "out"],
        ["run", "--demo", "-o", "out"],
        ["demo", "-o", "out"],
        ["serve", "--port", "0"],
    ):
        assert callable(parser.parse_args(argv).func)


def test_server_and_api_key_default_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VID2SCENE_SERVER", "http://example:9")
    monkeypatch.setenv("VID2SCENE_API_KEY", "secret-key")
    args = build_parser().parse_args(["status", "j1"])
    assert (args.server, args.api_key) == ("http://example:9", "secret-key")


def test_status_against_an_unreachable_server_prints_the_error_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "j1", "--server", "http://127.0.0.1:9"]) == 1
    assert "SERVER_UNREACHABLE" in capsys.readouterr().err


def test_an_unreachable_server_message_says_how_to_fix_it_and_where_the_url_came_from(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VID2SCENE_SERVER", raising=False)
    assert main(["jobs", "--server", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach http://127.0.0.1:9" in err
    assert "Start one on this machine with `vid2scene serve`" in err
    assert "--server URL or VID2SCENE_SERVER=URL" in err and "check the URL" in err
    assert "(from --server)" in err
    monkeypatch.setenv("VID2SCENE_SERVER", "http://127.0.0.1:9")
    assert main(["jobs"]) == 1
    assert "(from VID2SCENE_SERVER)" in capsys.readouterr().err


def test_run_without_video_or_demo_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    assert main(["run", "-o", str(tmp_path)]) == 1
    assert "--demo" in capsys.readouterr().err


def test_without_gpu_the_preview_preset_is_chosen_and_announced(capsys: pytest.CaptureFixture[str]) -> None:
    assert choose_preset("run", None, "cpu") == "preview"
    assert "vid2scene run: no GPU here" in capsys.readouterr().err
    assert choose_preset("run", None, "cuda") == "standard"
    assert "'standard' preset" in capsys.readouterr().err
    assert choose_preset("run", "high", "cpu") == "high"
    assert capsys.readouterr().err == ""  # a preset asked for is not announced


def test_user_options_override_demo_options_key_by_key() -> None:
    merged = merge_options({"gs": {"iterations": 300, "sh_degree": 1}}, {"gs": {"iterations": 50}, "sfm": {"seed": 2}})
    assert merged == {"gs": {"iterations": 50, "sh_degree": 1}, "sfm": {"seed": 2}}
