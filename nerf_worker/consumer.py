"""The nerf worker's glue: the shared consumer loop around :func:`nerf_worker.pipeline.train_tensorf`.

Input ``sfm.tar``; artifacts the ``nerf`` entries of :data:`shared.artifacts.ARTIFACTS` (``tensorf.pt``,
the flythrough and ``report-nerf.json``).
"""

from __future__ import annotations

from shared.artifacts import SCENE_ARCHIVE, output_files
from shared.settings import Device
from shared.stage_handler import TrainFn, WorkerSpec, training_device_class, training_handler


def _load_train_tensorf() -> TrainFn:
    from nerf_worker.pipeline import train_tensorf  # torch: imported only where the stage runs

    return train_tensorf


def make_spec(device: Device = "auto") -> WorkerSpec:
    """The nerf worker kind; ``device`` (the worker's setting) replaces an ``auto`` device option."""
    handler = training_handler(_load_train_tensorf, output_files("nerf"), device)
    return WorkerSpec(
        stage="nerf", inputs=(SCENE_ARCHIVE,), handler=handler, device_class=training_device_class(device)
    )
