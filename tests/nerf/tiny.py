"""CPU-sized TensoRF options shared by the tests."""

from __future__ import annotations

from typing import Any

from shared.options.nerf import TensorfOptions


def tiny_options(**overrides: Any) -> TensorfOptions:
    """Options small enough to train in well under a minute on two CPU cores."""
    base: dict[str, Any] = {
        "device": "cpu",
        "iterations": 300,
        "max_long_side": 64,
        "batch_rays": 256,
        "depth_batch_rays": 128,
        "n_voxels_init": 16**3,
        "n_voxels_final": 40**3,
        "density_components": 4,
        "appearance_components": 12,
        "upsample_at": (0.2, 0.4),
        "alpha_mask_at": (0.2, 0.5),
        "step_ratio": 1.0,
        "lr_grid": 0.03,
        "density_shift": -5.0,
        "render_chunk": 2048,
        "flythrough_seconds": 1.0,
        "flythrough_fps": 8,
        "flythrough_long_side": 48,
    }
    return TensorfOptions(**{**base, **overrides})
