"""Options of the Gaussian-splatting stage.

``standard`` and ``high`` follow gsplat's ``simple_trainer`` defaults (7k and 30k steps, SH degree 3
raised every 1000 steps, densification from step 500 to 15k every 100 steps); ``preview`` is sized
to finish a small scene in minutes on a 2-core CPU.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from shared.options.base import MAX_SEED, StageOptions
from shared.settings import Device

#: Initial opacity and scale multiplier of gsplat ``simple_trainer``'s default recipe and of its MCMC recipe.
DEFAULT_INIT_OPACITY, DEFAULT_INIT_SCALE = 0.1, 1.0
MCMC_INIT_OPACITY, MCMC_INIT_SCALE = 0.5, 0.1

#: The most Gaussians a job may ask for (about 16 GB of parameters, gradients and Adam state on a GPU).
MAX_GAUSSIANS = 16_000_000


class SplatOptions(StageOptions):
    """Training, export and flythrough settings of ``train_splats``."""

    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="random seed")
    device: Device = Field(default="auto", description="auto: CUDA when available, else CPU")
    iterations: int = Field(default=7000, ge=1, le=200_000, description="optimisation steps")
    max_long_side: int = Field(default=1280, ge=32, le=8192, description="training image long side, pixels")
    sh_degree: int = Field(default=3, ge=0, le=3, description="final spherical-harmonics degree")
    sh_degree_interval: int = Field(default=1000, ge=1, le=200_000, description="steps between SH degree increases")
    max_gaussians: int = Field(default=3_000_000, ge=1000, le=MAX_GAUSSIANS, description="cap on the Gaussian count")
    strategy: Literal["default", "mcmc", "none"] = Field(
        default="default",
        description="densification: gsplat's DefaultStrategy (clone/split/prune), MCMCStrategy (CUDA only) or none",
    )
    refine_start_iter: int = Field(default=500, ge=0, le=200_000, description="first step of densification")
    refine_stop_iter: int = Field(default=15_000, ge=0, le=200_000, description="no densification from this step on")
    refine_every: int = Field(default=100, ge=1, le=200_000, description="steps between densification rounds")
    grow_grad2d: float = Field(
        default=0.0002, gt=0, le=1, description="image-plane gradient above which a Gaussian is cloned or split"
    )
    prune_opacity: float = Field(default=0.005, gt=0, lt=1, description="Gaussians less opaque than this are pruned")
    ssim_lambda: float = Field(default=0.2, ge=0, le=1, description="weight of (1 − SSIM) in the loss; L1 gets 1 − λ")
    init_opacity: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="opacity of the initial Gaussians (default: 0.1, or 0.5 with mcmc, as in gsplat's recipes)",
    )
    init_scale: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="initial scale as a multiple of the distance to the 3 nearest points "
        "(default: 1.0, or 0.1 with mcmc, as in gsplat's recipes)",
    )
    random_background: bool = Field(
        default=False, description="train against a random background colour (discourages transparent splats)"
    )
    flythrough_seconds: float = Field(default=8.0, gt=0, le=120, description="flythrough duration")
    flythrough_fps: int = Field(default=30, ge=1, le=120, description="flythrough frame rate")
    flythrough_long_side: int = Field(default=960, ge=32, le=4096, description="flythrough long side, pixels")
    flythrough_path: Literal["auto", "orbit", "spline"] = Field(
        default="auto", description="orbit for 360° captures, else a spline through the captured views"
    )

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "preview": {
            "iterations": 500,
            "max_long_side": 320,
            "sh_degree": 1,
            "sh_degree_interval": 200,
            "max_gaussians": 60_000,
            "refine_start_iter": 100,
            "refine_stop_iter": 400,
            "refine_every": 50,
            "flythrough_seconds": 4.0,
            "flythrough_fps": 15,
            "flythrough_long_side": 320,
        },
        "standard": {},
        "high": {"iterations": 30_000, "max_long_side": 1920, "max_gaussians": 6_000_000},
    }

    def initial_opacity(self) -> float:
        """The initial opacity: ``init_opacity``, else the strategy's recipe value (MCMC 0.5, others 0.1)."""
        if self.init_opacity is not None:
            return self.init_opacity
        return MCMC_INIT_OPACITY if self.strategy == "mcmc" else DEFAULT_INIT_OPACITY

    def initial_scale(self) -> float:
        """The initial scale multiplier: ``init_scale``, else the strategy's recipe value (MCMC 0.1, others 1.0)."""
        if self.init_scale is not None:
            return self.init_scale
        return MCMC_INIT_SCALE if self.strategy == "mcmc" else DEFAULT_INIT_SCALE

    @model_validator(mode="after")
    def _refine_window_is_ordered(self) -> SplatOptions:
        if self.strategy != "none" and self.refine_stop_iter < self.refine_start_iter:
            raise ValueError("refine_stop_iter must not be before refine_start_iter")
        return self
