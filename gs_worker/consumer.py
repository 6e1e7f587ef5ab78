"""The gs worker's glue: the shared consumer loop around :func:`gs_worker.pipeline.train_splats`.

Input ``sfm.tar``; artifacts the ``gs`` entries of :data:`shared.artifacts.ARTIFACTS` (the exports,
the flythrough and ``report-gs.json``).
"""

from __future__ import annotations

from shared.artifacts import SCENE_ARCHIVE, output_files
from shared.settings import Device
from shared.stage_handler import TrainFn, WorkerSpec, training_device_class, training_handler


def _load_train_splats() -> TrainFn:
    from gs_worker.pipeline import train_splats  # torch, gsplat: imported only where the stage runs

    return train_splats


def make_spec(device: Device = "auto") -> WorkerSpec:
    """The gs worker kind; ``device`` (the worker's setting) replaces an ``auto`` device option."""
    handler = training_handler(_load_train_splats, output_files("gs"), device)
    return WorkerSpec(stage="gs", inputs=(SCENE_ARCHIVE,), handler=handler, device_class=training_device_class(device))
