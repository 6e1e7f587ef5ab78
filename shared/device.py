"""The training device: the one rule that turns a ``device`` setting (``auto``, ``cpu``, ``cuda``) into a device.

Both training stages, their ``train-*`` commands, the local launcher and the worker's announcement of
what it trains on go through these functions, so ``auto`` means the same everywhere: CUDA when PyTorch
sees a GPU, else the CPU. PyTorch is imported only when a function is called (the web server imports
this module's callers without it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ErrorCode, StageError
from shared.options.base import DeviceClass
from shared.settings import Device

if TYPE_CHECKING:
    import torch


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA GPU (False when PyTorch is not installed)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def device_class(requested: Device) -> DeviceClass:
    """What ``requested`` trains on: ``auto`` is ``cuda`` when a GPU is seen, else ``cpu``; the others are themselves.

    Unlike :func:`resolve_device` it never fails: it says what was asked for, for choosing a preset
    or announcing a worker, before anything runs.
    """
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    return requested


def resolve_device(requested: Device) -> torch.device:
    """The torch device a stage trains on for ``requested`` (``auto``: CUDA when available, else the CPU).

    Raises:
        StageError: ``CUDA_UNAVAILABLE`` when CUDA is requested and PyTorch sees no CUDA GPU.
    """
    import torch

    if requested == "cuda" and not cuda_available():
        raise StageError(ErrorCode.CUDA_UNAVAILABLE, "CUDA was requested but no CUDA GPU is available.")
    return torch.device(device_class(requested))


def device_name(device: torch.device) -> str:
    """The device as the stages' reports name it: ``cpu``, or ``cuda (<GPU name>)``."""
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
