"""The metrics both training stages report: the base of ``SplatMetrics`` and ``NerfMetrics``.

A stage writes its metrics model to ``report.json`` (``model_dump(mode="json")``) and the worker
records them on the job, so these field names are what the web page, the client and the benchmarks
read; a Gaussian scene and a radiance field of the same capture compare on them directly.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.heldout import HeldoutMetrics


class TrainingMetrics(BaseModel):
    """What every training stage measures: held-out quality before and after, steps, times, device."""

    model_config = ConfigDict(frozen=True)

    heldout_psnr: float = Field(description="mean held-out PSNR (dB) of the stage's result")
    heldout_ssim: float = Field(description="mean held-out SSIM of the stage's result")
    heldout_frames: int = Field(description="number of held-out frames scored")
    heldout_per_frame: list[dict[str, object]] = Field(default_factory=list, description="each held-out frame's scores")
    initial_psnr: float = Field(description="held-out PSNR (dB) of the untrained start")
    initial_ssim: float = Field(description="held-out SSIM of the untrained start")
    train_psnr: float = Field(description="PSNR (dB) on the training frames at the end of training")
    iterations: int = Field(description="training steps run")
    seconds: float = Field(description="wall time of the whole stage")
    train_seconds: float = Field(description="wall time of the training loop")
    device: str = Field(description="'cpu' or 'cuda (<GPU name>)' (shared.device.device_name)")
    flythrough_frames: int = Field(description="frames of the flythrough video")


def heldout_fields(initial: HeldoutMetrics, final: HeldoutMetrics) -> dict[str, Any]:
    """The held-out fields of :class:`TrainingMetrics` from the scores of the untrained start and of the result.

    Args:
        initial: :func:`shared.heldout.evaluate_heldout` of the untrained model.
        final: the same of the result the stage exports.

    Returns:
        ``heldout_psnr``, ``heldout_ssim``, ``heldout_frames``, ``heldout_per_frame``, ``initial_psnr``
        and ``initial_ssim``, to pass to the metrics model as keywords.
    """
    return {
        "heldout_psnr": final["psnr"],
        "heldout_ssim": final["ssim"],
        "heldout_frames": final["n_frames"],
        "heldout_per_frame": [dict(score) for score in final["frames"]],
        "initial_psnr": initial["psnr"],
        "initial_ssim": initial["ssim"],
    }
