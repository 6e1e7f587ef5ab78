"""The gs worker's glue: the shared consumer loop around :func:`gs_worker.pipeline.train_splats`.

Input ``sfm.tar``; artifacts the ``gs`` entries of :data:`shared.artifacts.ARTIFACTS` (the exports,
the flythrough and ``report-gs.json``).
"""

from __future__ import annotations

from gs_worker.cli import TRAIN_GS
from shared.settings import Device
from shared.stage_handler import WorkerSpec, training_spec


def make_spec(device: Device = "auto") -> WorkerSpec:
    """The gs worker kind; ``device`` (the worker's setting) replaces an ``auto`` device option."""
    return training_spec("gs", TRAIN_GS.load_train, device)
