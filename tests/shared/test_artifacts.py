"""Every worker uploads exactly its stage's entries of ``shared/artifacts.py``, each a file of the table's media type.

Each worker kind's real handler runs one tiny job (SfM on a short rendered orbit; gs and nerf a few
steps on a packed synthetic scene); what it returns for upload, and what its stage function left in
its output folder, are checked against the table.
"""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.artifacts import ARTIFACTS, BINARY, HTML, JSON, MP4, SCENE_ARCHIVE, TAR, output_files, stage_artifacts
from shared.messages import STAGES, StageName
from shared.options import SfmOptions, SplatOptions, StageOptions
from shared.stage_handler import StageJob, StageOutput, WorkerSpec
from shared.worker_api import Lease
from tests.nerf.tiny import tiny_options

pytestmark = pytest.mark.slow


def sniff(path: Path) -> str:
    """The media type a file's bytes show: tar, JSON, MP4 or HTML, else ``application/octet-stream``."""
    head = path.read_bytes()[:64]
    if head[4:8] == b"ftyp":
        return MP4
    if head.lower().startswith(b"<!doctype html"):
        return HTML
    try:
        json.loads(path.read_text())
        return JSON
    except (UnicodeDecodeError, ValueError):
        pass
    return TAR if tarfile.is_tarfile(path) else BINARY


def test_the_table_gives_each_stage_its_report_last_and_sfm_its_archive() -> None:
    assert {a.stage for a in ARTIFACTS.values()} == set(STAGES)
    for stage in STAGES:
        names = [a.name for a in stage_artifacts(stage)]
        assert names[-1] == f"report-{stage}.json" and ARTIFACTS[names[-1]].media_type == JSON
    assert ARTIFACTS[SCENE_ARCHIVE].stage == "sfm" and ARTIFACTS[SCENE_ARCHIVE].file is None
    assert len({a.file for a in ARTIFACTS.values() if a.stage == "gs"}) == len(stage_artifacts("gs"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A short rendered orbit video (``input``) and a packed synthetic scene (``sfm.tar``)."""
    from shared.scene_archive import pack_scene
    from shared.synthetic_scene import render_capture, write_ground_truth_scene

    base = tmp_path_factory.mktemp("inputs")
    video = render_capture(base / "capture", width=192, height=108, n_frames=16, fps=30.0, seed=0).video
    write_ground_truth_scene(base / "scene", width=64, height=36, n_frames=12, n_points=800)
    return {"input": video, SCENE_ARCHIVE: pack_scene(base / "scene", base / SCENE_ARCHIVE)}


def _spec_and_options(stage: StageName) -> tuple[WorkerSpec, StageOptions]:
    if stage == "sfm":
        from sfm_worker.consumer import make_spec as sfm_spec

        options = SfmOptions.from_preset("preview", max_num_features=1024, min_frames=8, num_threads=1)
        return sfm_spec(), options
    if stage == "gs":
        from gs_worker.consumer import make_spec as gs_spec

        tiny = {"iterations": 3, "max_long_side": 32, "flythrough_seconds": 0.4, "flythrough_fps": 5}
        return gs_spec("cpu"), SplatOptions.from_preset("preview", device="auto", **tiny)
    from nerf_worker.consumer import make_spec as nerf_spec

    tiny = {"iterations": 4, "max_long_side": 32, "flythrough_seconds": 0.5, "flythrough_fps": 4}
    return nerf_spec("cpu"), tiny_options(device="auto", flythrough_long_side=32, **tiny)


def _run_handler(spec: WorkerSpec, options: StageOptions, inputs: dict[str, Path], tmp_path: Path) -> StageOutput:
    from shared.messages import StageRequest

    request = StageRequest(job_id="job-1", stage=spec.stage, attempt=1)
    lease = Lease(lease_id="l", expires_at=datetime.now(UTC), attempt=1, options={}, heartbeat_s=1.0)
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    job_inputs = {name: inputs[name] for name in spec.inputs}
    job = StageJob(request, lease, options, job_inputs, work_dir, tmp_path / "out", lambda fraction, message: None)
    return spec.handler(job)


@pytest.mark.parametrize("stage", STAGES)
def test_each_worker_uploads_exactly_its_table_entries_with_their_media_types(
    stage: StageName, inputs: dict[str, Path], tmp_path: Path
) -> None:
    spec, options = _spec_and_options(stage)
    assert spec.stage == stage
    output = _run_handler(spec, options, inputs, tmp_path)

    assert list(output.artifacts) == [a.name for a in stage_artifacts(stage)]
    for name, path in output.artifacts.items():
        assert ARTIFACTS[name].stage == stage
        assert sniff(path) == ARTIFACTS[name].media_type, name
    out_dir = tmp_path / "out"
    for name, file in output_files(stage).items():
        assert output.artifacts[name] == out_dir / file
    if stage != "sfm":  # every file a training stage writes is uploaded (SfM's folder travels as sfm.tar)
        assert {p.name for p in out_dir.iterdir()} == set(output_files(stage).values())
    else:
        with tarfile.open(output.artifacts[SCENE_ARCHIVE]) as archive:
            packed = {Path(member).parts[0] for member in archive.getnames()}
        assert packed == {p.name for p in out_dir.iterdir()}
