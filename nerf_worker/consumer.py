"""The nerf worker's glue: the shared consumer loop around :func:`nerf_worker.pipeline.train_tensorf`.

Input ``sfm.tar``; artifacts ``tensorf.pt``, ``flythrough-nerf.mp4`` and ``report-nerf.json``.
"""

from __future__ import annotations

from shared.consumer import REPORT_FILE, StageHandler, StageJob, StageOutput, WorkerSpec, collect_outputs
from shared.options import TensorfOptions
from shared.settings import Device

#: Artifact name → file name in the stage's output folder.
ARTIFACT_FILES = {
    "tensorf.pt": "tensorf.pt",
    "flythrough-nerf.mp4": "flythrough-nerf.mp4",
    "report-nerf.json": REPORT_FILE,
}


def make_handler(device: Device = "auto") -> StageHandler:
    """A handler that trains a TensoRF field; ``device`` (the worker's setting) replaces an ``auto`` option."""

    def handle(job: StageJob) -> StageOutput:
        from shared.scene_archive import unpack_scene

        from nerf_worker.pipeline import train_tensorf  # torch: imported only where the stage runs

        assert isinstance(job.options, TensorfOptions)
        options = job.options
        if options.device == "auto" and device != "auto":
            options = options.model_copy(update={"device": device})
        scene_dir = job.work_dir / "scene"
        unpack_scene(job.inputs["sfm.tar"], scene_dir)
        train_tensorf(scene_dir, job.out_dir, options, job.on_progress)
        return collect_outputs(job.out_dir, ARTIFACT_FILES)

    return handle


def make_spec(device: Device = "auto") -> WorkerSpec:
    """The nerf worker kind."""
    return WorkerSpec(stage="nerf", inputs=("sfm.tar",), handler=make_handler(device))
