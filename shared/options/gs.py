"""Options of the Gaussian-splatting stage.

``standard`` and ``high`` follow gsplat's ``simple_trainer`` defaults (7k and 30k steps, SH degree 3
raised every 1000 steps, densification from step 500 to 15k every 100 steps); ``preview`` is the CPU
preset: a phone clip at 640 px in minutes on 2 cores with the compiled rasterizer.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.options.base import MAX_SEED, StageOptions
from shared.settings import Device

#: Initial opacity and scale multiplier of gsplat ``simple_trainer``'s default recipe and of its MCMC recipe.
DEFAULT_INIT_OPACITY, DEFAULT_INIT_SCALE = 0.1, 1.0
MCMC_INIT_OPACITY, MCMC_INIT_SCALE = 0.5, 0.1

#: The most Gaussians a job may ask for (about 16 GB of parameters, gradients and Adam state on a GPU).
MAX_GAUSSIANS = 16_000_000

#: Largest coordinate a crop box may name (the exported frame's units: the SfM unit, cameras within about 1).
CROP_LIMIT = 1e4


class CropBox(BaseModel):
    """An axis-aligned box in the exported files' frame (``scene.ply`` coordinates: −y up, ground at y = 0)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: tuple[float, float, float] = Field(description="lower corner (x, y, z)")
    max: tuple[float, float, float] = Field(description="upper corner (x, y, z)")

    @model_validator(mode="after")
    def _is_a_box(self) -> CropBox:
        for lo, hi in zip(self.min, self.max, strict=True):
            if not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) > CROP_LIMIT:
                raise ValueError(f"crop box corners must be finite numbers within ±{CROP_LIMIT:g}")
            if lo >= hi:
                raise ValueError("crop box: each min must be below its max")
        return self


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

    # --- clean-up and crop before export (gs_worker/cleanup.py) ---
    crop: Literal["auto", "none"] | CropBox = Field(
        default="auto",
        description="auto: the region the cameras see within the SfM points' robust extent; none; or a box "
        "{min: [x, y, z], max: [x, y, z]} (or 'x0,y0,z0,x1,y1,z1') in the exported frame",
    )
    cleanup: bool = Field(
        default=True, description="remove floaters (faint, video overlay, near-camera, huge, isolated) before export"
    )
    cleanup_min_opacity: float = Field(default=0.005, ge=0, lt=0.5, description="splats less opaque than this go")
    cleanup_max_angular_size: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="splats whose largest σ exceeds this × their distance to the nearest camera go",
    )
    cleanup_near_camera: float = Field(
        default=0.05, ge=0, le=1, description="splats closer than this × scene radius to a camera centre go"
    )
    cleanup_isolation_sigma: float = Field(
        default=4.0,
        ge=1,
        le=20,
        description="statistical outlier removal: robust σs above the median of spacing / neighbours' spacing",
    )
    cleanup_knn: int = Field(default=8, ge=2, le=64, description="neighbours of the statistical outlier removal")
    cleanup_max_psnr_drop: float = Field(
        default=0.2,
        ge=0,
        le=10,
        description="held-out PSNR (dB) the clean-up may cost; beyond it the floater steps are undone",
    )

    @field_validator("crop", mode="before")
    @classmethod
    def _crop_from_text(cls, value: Any) -> Any:
        """Accept ``'x0,y0,z0,x1,y1,z1'`` (the CLI's ``--set crop=...``) for a box."""
        if isinstance(value, str) and value not in ("auto", "none"):
            parts = value.split(",")
            if len(parts) != 6:
                raise ValueError("crop must be 'auto', 'none' or six numbers 'x0,y0,z0,x1,y1,z1'")
            try:
                numbers = [float(p) for p in parts]
            except ValueError as exc:
                raise ValueError("crop box numbers must be numbers") from exc
            return {"min": numbers[:3], "max": numbers[3:]}
        return value

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # The CPU preset (what a machine without CUDA gets by default): the garden clip at its full 640 px in
        # under 10 minutes on 2 cores with the compiled rasterizer (docs/gs.md has the measured figures).
        "preview": {
            "iterations": 1200,
            "max_long_side": 640,
            "sh_degree": 1,
            "sh_degree_interval": 400,
            "max_gaussians": 60_000,
            "refine_start_iter": 100,
            "refine_stop_iter": 1000,
            "refine_every": 100,
            "flythrough_seconds": 8.0,
            "flythrough_fps": 24,
            "flythrough_long_side": 640,
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
