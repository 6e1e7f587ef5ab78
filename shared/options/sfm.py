"""Options of the structure-from-motion stage."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from shared.options.base import MAX_SEED, StageOptions


class SfmOptions(StageOptions):
    """How frames are chosen from the video and how COLMAP reconstructs them."""

    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="random seed for COLMAP and frame selection")
    target_frames: int = Field(default=150, ge=8, le=2000, description="how many frames to select")
    max_frames: int | None = Field(
        default=None, ge=8, le=2000, description="hard cap on selected frames (CLI --max-frames)"
    )
    max_long_side: int = Field(default=1280, ge=64, le=8192, description="long side of frames, in pixels")
    min_frames: int = Field(default=12, ge=3, le=2000, description="fewer usable frames than this: VIDEO_TOO_SHORT")
    min_registered_fraction: float = Field(
        default=0.5, gt=0, le=1, description="register fewer than this share of frames: TOO_FEW_FRAMES_REGISTERED"
    )
    max_num_features: int = Field(default=8192, ge=256, le=65_536, description="SIFT features per frame")
    sequential_overlap: int = Field(default=10, ge=1, le=200, description="neighbours matched in sequential matching")
    num_threads: int = Field(default=-1, ge=-1, le=256, description="COLMAP threads (-1: all cores)")
    camera_model: Literal["SIMPLE_RADIAL", "OPENCV"] = Field(
        default="SIMPLE_RADIAL", description="COLMAP model of the one shared camera, before undistortion"
    )
    fallback_max_frames: int = Field(
        default=80,
        ge=8,
        le=400,
        description="when too few frames register, match every pair among at most this many evenly spaced frames",
    )
    min_baseline_ratio: float = Field(
        default=0.1,
        ge=0,
        le=10,
        description="camera centres spread less than this share of the distance to the scene (turning on the spot): "
        "VIDEO_TOO_SHORT",
    )
    min_frame_difference: float = Field(
        default=1.5,
        ge=0,
        le=255,
        description="mean grey-level change (0-255) below which the frames count as a static camera: VIDEO_TOO_SHORT",
    )
    jpeg_quality: int = Field(default=95, ge=50, le=100, description="JPEG quality of the undistorted frames")
    on_poor_capture: Literal["continue", "fail"] = Field(
        default="continue",
        description="what a 'poor' capture check does: 'continue' reports it and goes on; 'fail' stops the stage "
        "with POOR_CAPTURE before any reconstruction",
    )

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "preview": {"target_frames": 60, "max_long_side": 640, "max_num_features": 4096},
        "standard": {},
        "high": {"target_frames": 300, "max_long_side": 1920, "max_num_features": 16384},
    }
