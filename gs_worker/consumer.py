"""The gs worker's glue: the shared consumer loop around :func:`gs_worker.pipeline.train_splats`.

Input ``sfm.tar``; artifacts ``scene.ply``, ``scene.splat``, ``flythrough-gs.mp4`` and ``report-gs.json``.
"""

from __future__ import annotations

from shared.consumer import REPORT_FILE, StageHandler, StageJob, StageOutput, WorkerSpec, collect_outputs
from shared.options import SplatOptions
from shared.settings import Device

#: Artifact name → file name in the stage's output folder.
ARTIFACT_FILES = {
    "scene.ply": "scene.ply",
    "scene.splat": "scene.splat",
    "flythrough-gs.mp4": "flythrough-gs.mp4",
    "report-gs.json": REPORT_FILE,
}


def make_handler(device: Device = "auto") -> StageHandler:
    """A handler that trains splats; ``device`` (the worker's setting) replaces an ``auto`` option."""

    def handle(job: StageJob) -> StageOutput:
        from shared.scene_archive import unpack_scene

        from gs_worker.pipeline import train_splats  # torch, gsplat: imported only where the stage runs

        assert isinstance(job.options, SplatOptions)
        options = job.options
        if options.device == "auto" and device != "auto":
            options = options.model_copy(update={"device": device})
        scene_dir = job.work_dir / "scene"
        unpack_scene(job.inputs["sfm.tar"], scene_dir)
        train_splats(scene_dir, job.out_dir, options, job.on_progress)
        return collect_outputs(job.out_dir, ARTIFACT_FILES)

    return handle


def make_spec(device: Device = "auto") -> WorkerSpec:
    """The gs worker kind."""
    return WorkerSpec(stage="gs", inputs=("sfm.tar",), handler=make_handler(device))
