"""Options of the TensoRF stage."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from shared.options.base import StageOptions
from shared.settings import Device


class TensorfOptions(StageOptions):
    """Training, export and flythrough settings of ``train_tensorf``."""

    seed: int = Field(default=0, description="random seed")
    device: Device = Field(default="auto", description="auto: CUDA when available, else CPU")
    iterations: int = Field(default=15_000, ge=1, le=200_000, description="optimisation steps")
    max_long_side: int = Field(default=800, ge=32, le=4096, description="training image long side, pixels")
    depth_weight: float = Field(default=0.1, ge=0, description="weight of the SfM depth loss (0: off)")
    flythrough_seconds: float = Field(default=8.0, gt=0, le=120, description="flythrough duration")
    flythrough_fps: int = Field(default=30, ge=1, le=120, description="flythrough frame rate")
    flythrough_long_side: int = Field(default=640, ge=32, le=4096, description="flythrough long side, pixels")

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "preview": {
            "iterations": 600,
            "max_long_side": 200,
            "flythrough_seconds": 4.0,
            "flythrough_fps": 15,
            "flythrough_long_side": 240,
        },
        "standard": {},
        "high": {"iterations": 30_000, "max_long_side": 1280},
    }
