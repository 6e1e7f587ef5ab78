"""The nerf worker's glue: the shared consumer loop around :func:`nerf_worker.pipeline.train_tensorf`.

Input ``sfm.tar``; artifacts the ``nerf`` entries of :data:`shared.artifacts.ARTIFACTS` (``tensorf.pt``,
the flythrough and ``report-nerf.json``).
"""

from __future__ import annotations

from nerf_worker.cli import TRAIN_NERF
from shared.settings import Device
from shared.stage_handler import WorkerSpec, training_spec


def make_spec(device: Device = "auto") -> WorkerSpec:
    """The nerf worker kind; ``device`` (the worker's setting) replaces an ``auto`` device option."""
    return training_spec("nerf", TRAIN_NERF.load_train, device)
