"""Options of the Gaussian-splatting stage."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from shared.options.base import StageOptions
from shared.settings import Device


class SplatOptions(StageOptions):
    """Training, export and flythrough settings of ``train_splats``."""

    seed: int = Field(default=0, description="random seed")
    device: Device = Field(default="auto", description="auto: CUDA when available, else CPU")
    iterations: int = Field(default=7000, ge=1, le=200_000, description="optimisation steps")
    max_long_side: int = Field(default=1280, ge=32, le=8192, description="training image long side, pixels")
    sh_degree: int = Field(default=3, ge=0, le=3, description="final spherical-harmonics degree")
    sh_degree_interval: int = Field(default=1000, ge=1, description="steps between SH degree increases")
    max_gaussians: int = Field(default=3_000_000, ge=1000, description="cap on the Gaussian count")
    strategy: Literal["default", "mcmc"] = Field(default="default", description="densification (mcmc: CUDA only)")
    flythrough_seconds: float = Field(default=8.0, gt=0, le=120, description="flythrough duration")
    flythrough_fps: int = Field(default=30, ge=1, le=120, description="flythrough frame rate")
    flythrough_long_side: int = Field(default=960, ge=32, le=4096, description="flythrough long side, pixels")

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "preview": {
            "iterations": 500,
            "max_long_side": 320,
            "sh_degree": 1,
            "sh_degree_interval": 200,
            "max_gaussians": 60_000,
            "flythrough_seconds": 4.0,
            "flythrough_fps": 15,
            "flythrough_long_side": 320,
        },
        "standard": {},
        "high": {"iterations": 30_000, "max_long_side": 1920, "max_gaussians": 6_000_000},
    }
