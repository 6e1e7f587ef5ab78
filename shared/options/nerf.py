"""Options of the TensoRF stage."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from shared.options.base import MAX_SEED, StageOptions
from shared.settings import Device

#: The largest grid a job may ask for (512³: planes and lines of a few GB with their Adam state).
MAX_VOXELS = 512**3
#: The most entries in a schedule (``upsample_at``, ``alpha_mask_at``).
MAX_SCHEDULE_STEPS = 16


class TensorfOptions(StageOptions):
    """Training, export and flythrough settings of ``train_tensorf``.

    Schedule steps are fractions of ``iterations`` so that a preset keeps its shape when the
    iteration count is overridden.
    """

    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="random seed")
    device: Device = Field(default="auto", description="auto: CUDA when available, else CPU")
    iterations: int = Field(default=15_000, ge=1, le=200_000, description="optimisation steps")
    max_long_side: int = Field(default=800, ge=16, le=4096, description="training image long side, pixels")
    batch_rays: int = Field(default=4096, ge=16, le=65536, description="photometric rays per step")
    # --- the field --------------------------------------------------------------------------------
    n_voxels_init: int = Field(default=128**3, ge=8, le=MAX_VOXELS, description="voxels of the initial grid")
    n_voxels_final: int = Field(default=300**3, ge=8, le=MAX_VOXELS, description="voxels after the last upsampling")
    density_components: int = Field(default=16, ge=1, le=256, description="VM components per split, density")
    appearance_components: int = Field(default=48, ge=1, le=512, description="VM components per split, appearance")
    step_ratio: float = Field(default=0.5, gt=0, le=2, description="ray-marching step, in voxel sizes")
    render_step_ratio: float = Field(
        default=0.5,
        gt=0,
        le=2,
        description="ray-marching step when rendering held-out frames and the flythrough, in voxel sizes "
        "(a step as coarse as a voxel draws concentric rings; training's jitter hides them, a fixed render step not)",
    )
    density_shift: float = Field(
        default=-10.0,
        ge=-100,
        le=0,
        description="added to the density feature before the softplus: how empty the field starts",
    )
    # --- the schedule (fractions of iterations) ---------------------------------------------------
    upsample_at: tuple[float, ...] = Field(
        default=(0.07, 0.10, 0.13, 0.18, 0.23),
        max_length=MAX_SCHEDULE_STEPS,
        description="when the grid grows, as fractions of iterations",
    )
    alpha_mask_at: tuple[float, ...] = Field(
        default=(0.07, 0.13),
        max_length=MAX_SCHEDULE_STEPS,
        description="when the alpha mask is recomputed, as fractions of iterations",
    )
    alpha_mask_threshold: float = Field(default=1e-4, ge=0, lt=1, description="one-step opacity of an empty cell")
    # --- the optimiser and losses -----------------------------------------------------------------
    lr_grid: float = Field(default=0.02, gt=0, le=1, description="Adam learning rate of the planes and lines")
    lr_network: float = Field(default=1e-3, gt=0, le=1, description="Adam learning rate of the SH basis and background")
    lr_decay_ratio: float = Field(default=0.1, gt=0, le=1, description="learning rates end at this fraction")
    l1_weight: float = Field(default=8e-5, ge=0, le=10, description="L1 sparsity weight on the density factors")
    tv_weight_density: float = Field(default=0.01, ge=0, le=10, description="total-variation weight, density planes")
    tv_weight_appearance: float = Field(
        default=0.001, ge=0, le=10, description="total-variation weight, appearance planes"
    )
    depth_weight: float = Field(default=0.1, ge=0, le=10, description="weight of the SfM depth loss (0: off)")
    depth_batch_rays: int = Field(default=1024, ge=1, le=65536, description="SfM-point rays per step")
    depth_error_scale_px: float = Field(
        default=1.0, gt=0, le=100, description="reprojection error at which a point's depth weight halves"
    )
    min_near: float = Field(default=0.05, ge=0, le=10, description="closest distance sampled in front of a camera")
    render_chunk: int = Field(default=8192, ge=64, le=262_144, description="rays rendered at once (bounds memory)")
    # --- the flythrough ---------------------------------------------------------------------------
    flythrough_seconds: float = Field(default=8.0, gt=0, le=120, description="flythrough duration")
    flythrough_fps: int = Field(default=30, ge=1, le=120, description="flythrough frame rate")
    flythrough_long_side: int = Field(default=640, ge=16, le=4096, description="flythrough long side, pixels")
    flythrough_path: Literal["auto", "orbit", "spline"] = Field(
        default="auto", description="camera path kind (shared.camera_path)"
    )

    @field_validator("upsample_at", "alpha_mask_at")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= v < 1 for v in value) or list(value) != sorted(value):
            raise ValueError("schedule fractions must be ascending and in [0, 1)")
        return value

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "preview": {
            "iterations": 600,
            "max_long_side": 200,
            "step_ratio": 1.0,
            "batch_rays": 1024,
            "depth_batch_rays": 256,
            "n_voxels_init": 24**3,
            "n_voxels_final": 64**3,
            "density_components": 8,
            "appearance_components": 16,
            "upsample_at": (0.15, 0.3, 0.45),
            "alpha_mask_at": (0.15, 0.45),
            "lr_grid": 0.03,
            "density_shift": -5.0,
            "flythrough_seconds": 4.0,
            "flythrough_fps": 15,
            "flythrough_long_side": 240,
        },
        "standard": {},
        "high": {"iterations": 30_000, "max_long_side": 1280, "n_voxels_final": 400**3},
    }
