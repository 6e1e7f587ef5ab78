"""The stages' output directory appears complete or not at all (shared/output_dir.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.output_dir import staged_output_dir


def test_files_appear_in_a_new_output_dir_only_when_the_block_completes(tmp_path: Path) -> None:
    out_dir = tmp_path / "run" / "out"
    with staged_output_dir(out_dir, ("a.bin", "report.json")) as work_dir:
        (work_dir / "a.bin").write_bytes(b"a")
        (work_dir / "report.json").write_text("{}")
        assert not out_dir.exists()
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.bin", "report.json"]
    assert [p.name for p in out_dir.parent.iterdir()] == ["out"]


def test_a_failing_block_leaves_a_previous_run_untouched_and_no_partial_dir(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "report.json").write_text("old")
    with pytest.raises(RuntimeError), staged_output_dir(out_dir, ("report.json",)) as work_dir:
        (work_dir / "report.json").write_text("new")
        raise RuntimeError("cancelled halfway")
    assert (out_dir / "report.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_rerun_replaces_the_named_files_and_keeps_others(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "report.json").write_text("old")
    (out_dir / "notes.txt").write_text("mine")
    with staged_output_dir(out_dir, ("report.json",)) as work_dir:
        (work_dir / "report.json").write_text("new")
    assert (out_dir / "report.json").read_text() == "new"
    assert (out_dir / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_rerun_replaces_a_named_folder_whole_and_leaves_nothing_aside(tmp_path: Path) -> None:
    out_dir = tmp_path / "scene"
    (out_dir / "images").mkdir(parents=True)
    (out_dir / "images" / "frame_00007.jpg").write_bytes(b"old frame")
    (out_dir / "report.json").write_text("old")
    with staged_output_dir(out_dir, ("images", "report.json")) as work_dir:
        (work_dir / "images").mkdir()
        (work_dir / "images" / "frame_00001.jpg").write_bytes(b"new frame")
        (work_dir / "report.json").write_text("new")
    assert [p.name for p in (out_dir / "images").iterdir()] == ["frame_00001.jpg"]  # no stale frame kept
    assert (out_dir / "report.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["scene"]
