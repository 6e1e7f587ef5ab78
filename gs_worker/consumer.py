"""The gs worker's glue: the shared consumer loop around :func:`gs_worker.pipeline.train_splats`.

Input ``sfm.tar``; artifacts ``scene.ply``, ``scene.splat``, ``scene.spz``, ``scene.compressed.ply``,
``scene.html``, ``flythrough-gs.mp4`` and ``report-gs.json``.
"""

from __future__ import annotations

from shared.settings import Device
from shared.stage_handler import REPORT_FILE, TrainFn, WorkerSpec, training_device_class, training_handler

#: Artifact name → file name in the stage's output folder.
ARTIFACT_FILES = {
    "scene.ply": "scene.ply",
    "scene.splat": "scene.splat",
    "scene.spz": "scene.spz",
    "scene.compressed.ply": "scene.compressed.ply",
    "scene.html": "scene.html",
    "flythrough-gs.mp4": "flythrough-gs.mp4",
    "report-gs.json": REPORT_FILE,
}


def _load_train_splats() -> TrainFn:
    from gs_worker.pipeline import train_splats  # torch, gsplat: imported only where the stage runs

    return train_splats


def make_spec(device: Device = "auto") -> WorkerSpec:
    """The gs worker kind; ``device`` (the worker's setting) replaces an ``auto`` device option."""
    handler = training_handler(_load_train_splats, ARTIFACT_FILES, device)
    return WorkerSpec(stage="gs", inputs=("sfm.tar",), handler=handler, device_class=training_device_class(device))
