"""The sfm worker's glue: the shared consumer loop around :func:`sfm_worker.pipeline.run_sfm`.

Input ``input`` (the uploaded video); artifacts ``sfm.tar`` (the scene folder, packed) and
``report-sfm.json``. The capture check's report is published on the job as soon as it is known.
"""

from __future__ import annotations

from shared.artifacts import SCENE_ARCHIVE, VIDEO_INPUT, output_files
from shared.options import SfmOptions
from shared.stage_handler import StageJob, StageOutput, WorkerSpec, collect_outputs


def handle(job: StageJob) -> StageOutput:
    """Run structure from motion on the job's video and pack the scene for the training stages."""
    from sfm_worker.pipeline import run_sfm  # pycolmap: imported only where the stage runs
    from shared.scene_archive import pack_scene

    assert isinstance(job.options, SfmOptions)
    run_sfm(job.inputs[VIDEO_INPUT], job.out_dir, job.options, job.on_progress, job.on_capture)
    job.on_progress(1.0, "packing the scene")
    archive = job.work_dir / SCENE_ARCHIVE
    pack_scene(job.out_dir, archive)
    report = collect_outputs(job.out_dir, output_files("sfm"))
    return StageOutput(artifacts={SCENE_ARCHIVE: archive, **report.artifacts}, metrics=report.metrics)


def make_spec() -> WorkerSpec:
    """The sfm worker kind (structure from motion runs on the CPU wherever it runs)."""
    return WorkerSpec(stage="sfm", inputs=(VIDEO_INPUT,), handler=handle)
