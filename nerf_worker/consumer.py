"""The nerf worker's glue: the shared consumer loop around :func:`nerf_worker.pipeline.train_tensorf`.

Input ``sfm.tar``; artifacts ``tensorf.pt``, ``flythrough-nerf.mp4`` and ``report-nerf.json``.
"""

from __future__ import annotations

from shared.settings import Device
from shared.stage_handler import REPORT_FILE, TrainFn, WorkerSpec, training_device_class, training_handler

#: Artifact name → file name in the stage's output folder.
ARTIFACT_FILES = {
    "tensorf.pt": "tensorf.pt",
    "flythrough-nerf.mp4": "flythrough-nerf.mp4",
    "report-nerf.json": REPORT_FILE,
}


def _load_train_tensorf() -> TrainFn:
    from nerf_worker.pipeline import train_tensorf  # torch: imported only where the stage runs

    return train_tensorf


def make_spec(device: Device = "auto") -> WorkerSpec:
    """The nerf worker kind; ``device`` (the worker's setting) replaces an ``auto`` device option."""
    handler = training_handler(_load_train_tensorf, ARTIFACT_FILES, device)
    return WorkerSpec(stage="nerf", inputs=("sfm.tar",), handler=handler, device_class=training_device_class(device))
