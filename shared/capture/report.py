"""The capture check's result: what a user reads before any heavy work, as a typed JSON model.

Pure pydantic (no numpy, no OpenCV), so the web server and the worker API use it as they are. The
figures are defined in ``docs/capture-check.md``; shares are of the sampled frames (or of the pairs
of neighbouring frames for motion), view changes are in image diagonals.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The verdict: ``good`` (go ahead), ``usable`` (a reconstruction is likely, with flaws), ``poor``
#: (film again; the advice says how).
Verdict = Literal["good", "usable", "poor"]

#: What is wrong with a capture; each flag comes with one advice sentence.
CaptureFlag = Literal[
    "blurry",
    "some_blur",
    "too_fast",
    "not_moving",
    "turning_in_place",
    "partial_coverage",
    "overexposed",
    "underexposed",
    "too_few_frames",
]


#: Bound of the frame counts: far above any video, and within the 8-byte integers MongoDB stores.
_MAX_FRAMES = 10**9


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SharpnessReport(_Part):
    """How many sampled frames are blurred, and for how long in a row."""

    blurry_share: float = Field(ge=0, le=1, description="share of sampled frames judged blurry")
    longest_blurry_s: float = Field(ge=0, description="longest run of consecutive blurry samples, in seconds")
    median_sharpness: float = Field(ge=0, description="Laplacian variance over grey-level variance, median")


class MotionReport(_Part):
    """How fast the view changes, and whether the camera moves through the scene or only turns."""

    view_change_per_frame: float = Field(ge=0, description="mean image motion between neighbouring video frames")
    fast_share: float = Field(ge=0, le=1, description="share of sampled frames whose next frame moved too far")
    turn_deg_per_frame: float = Field(ge=0, description="camera rotation per video frame, in degrees")
    total_view_change: float = Field(
        ge=0, description="net image motion from keyframe to keyframe, summed over the video, in diagonals"
    )
    parallax: float | None = Field(
        description="median over frame pairs of 1 − (tracks a homography explains)/(tracks an essential matrix "
        "explains): about 0 when turning on the spot; None without enough motion to measure"
    )
    turning_in_place: bool


class CoverageReport(_Part):
    """How far the camera went around the subject."""

    arc_deg: float = Field(ge=0, description="camera rotation about its main axis, summed with sign, in degrees")
    closes_loop: bool = Field(description="the last frames see the first ones again after a wide arc")


class ExposureReport(_Part):
    """How many sampled frames are too bright or too dark."""

    overexposed_share: float = Field(ge=0, le=1)
    underexposed_share: float = Field(ge=0, le=1)
    median_brightness: float = Field(ge=0, le=255, description="median of the frames' mean grey level")


class CaptureReport(_Part):
    """The capture check of one video: figures, a verdict and advice."""

    verdict: Verdict
    flags: list[CaptureFlag] = Field(max_length=20, description="what is wrong, most serious first")
    advice: list[Annotated[str, Field(max_length=500)]] = Field(
        max_length=20, description="one sentence per flag: what to do when filming again"
    )
    duration_s: float = Field(ge=0)
    frame_count: int = Field(ge=0, le=_MAX_FRAMES, description="frames in the video")
    frames_sampled: int = Field(ge=0, le=_MAX_FRAMES, description="frames the check looked at")
    usable_frames: int = Field(
        ge=0, le=_MAX_FRAMES, description="frames estimated sharp and well exposed (the sampled share)"
    )
    usable_duration_s: float = Field(ge=0, description="the duration those frames span")
    sharpness: SharpnessReport
    motion: MotionReport
    coverage: CoverageReport
    exposure: ExposureReport
    seconds: float = Field(ge=0, description="how long the check took")

    def summary(self) -> str:
        """One line for a progress message or a terminal: the verdict and the advice."""
        if not self.advice:
            return f"capture {self.verdict}"
        return f"capture {self.verdict}: " + " ".join(self.advice)
