"""``vid2scene download`` against the real web server: it says which files a job does not have yet
and exits non-zero unless ``--partial``; the user's own video comes back only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.exit_codes import ExitCode
from tests.cli.conftest import finish_stage
from vid2scene.cli import main
from vid2scene.local import LocalStack

pytestmark = pytest.mark.service


@pytest.fixture
def running_job(api_only: LocalStack, small_video: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A job whose SfM finished (``sfm.tar`` is there) while its gs stage is still queued."""
    argv = ["submit", str(small_video), "--preset", "preview", "--server", api_only.url, "-q"]
    assert main(argv) == ExitCode.OK
    job_id = capsys.readouterr().out.strip()
    finish_stage(api_only, job_id, "sfm", {"sfm.tar": b"the scene", "report-sfm.json": b"{}"})
    return job_id


def test_download_of_a_running_job_names_what_is_missing_and_exits_2(
    api_only: LocalStack, running_job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["download", running_job, "-o", str(out), "--server", api_only.url, "-q"])
    assert code == ExitCode.PARTIAL == 2
    captured = capsys.readouterr()
    assert "the files of gs (queued) are not there yet" in captured.err
    assert f"vid2scene wait {running_job}" in captured.err and "--partial" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["report-sfm.json", "sfm.tar"]  # not input.mp4
    assert (out / "sfm.tar").read_bytes() == b"the scene"
    assert {Path(line).name for line in captured.out.split()} == {"report-sfm.json", "sfm.tar"}


def test_download_with_partial_accepts_the_files_there_are_and_exits_0(
    api_only: LocalStack, running_job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["download", running_job, "-o", str(out), "--partial", "--server", api_only.url, "-q"]) == 0
    assert "gs (queued)" in capsys.readouterr().err  # still said, but accepted
    assert sorted(p.name for p in out.iterdir()) == ["report-sfm.json", "sfm.tar"]


def test_download_fetches_the_uploaded_video_only_with_include_input(
    api_only: LocalStack, running_job: str, small_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = ["download", running_job, "-o", str(out), "--partial", "--include-input", "--server", api_only.url, "-q"]
    assert main(argv) == ExitCode.OK
    assert (out / "input.mp4").read_bytes() == small_video.read_bytes()


def test_download_of_a_finished_job_exits_0_and_a_name_it_lacks_exits_1(
    api_only: LocalStack, running_job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finish_stage(api_only, running_job, "gs", {"scene.ply": b"ply", "scene.splat": b"splat"})
    out = tmp_path / "out"
    assert main(["download", running_job, "-o", str(out), "--server", api_only.url, "-q"]) == ExitCode.OK
    assert sorted(p.name for p in out.iterdir()) == ["report-sfm.json", "scene.ply", "scene.splat", "sfm.tar"]
    capsys.readouterr()
    argv = ["download", running_job, "-o", str(out), "--only", "tensorf.pt", "--server", api_only.url, "-q"]
    assert main(argv) == ExitCode.ERROR
    assert f"job {running_job} has no tensorf.pt" in capsys.readouterr().err


def test_download_of_a_failed_job_says_the_missing_files_will_not_come_and_exits_3(
    api_only: LocalStack, running_job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finish_stage(api_only, running_job, "gs", error_code="TRAINING_DIVERGED")
    code = main(["download", running_job, "-o", str(tmp_path / "out"), "--server", api_only.url, "-q"])
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED, err
    assert "gs (failed) will not come" in err


def test_download_bars_start_from_the_listed_size_not_an_unknown_total(
    api_only: LocalStack, running_job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each file's bar knows its size from the job's listing before the first byte: no ``0.00B`` bar of
    unknown size is drawn before the real one."""
    code = main(["download", running_job, "-o", str(tmp_path / "out"), "--partial", "--server", api_only.url])
    assert code == ExitCode.OK
    err = capsys.readouterr().err
    assert "sfm.tar:   0%" in err and "0.00/9.00" in err, err  # b"the scene": 9 bytes, known from the start
    assert "sfm.tar: 100%" in err and "9.00/9.00" in err, err
    assert "0.00B [" not in err, err  # tqdm's bar of an unknown total
