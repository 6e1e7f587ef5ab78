"""Held-out evaluation: render each ``test`` frame of a scene and score it against the photo.

Both training stages report these numbers (``heldout_psnr``, ``heldout_ssim``), so a Gaussian scene
and a radiance field of the same capture compare directly. The caller supplies the renderer and
the ground-truth images (at whatever resolution it trained at); this module owns the loop, the
camera scaling and the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypedDict

import numpy as np

from shared.image_metrics import psnr, ssim
from shared.manifest import FrameRecord, PinholeCamera, SceneManifest, Split
from shared.progress import ProgressFn, no_progress

#: Renders one frame: ``(frame, camera) -> [H, W, 3]`` float image in ``[0, 1]``, where ``camera`` is
#: the manifest camera scaled to the ground-truth image's size.
RenderFn = Callable[[FrameRecord, PinholeCamera], np.ndarray]

#: The ground truth: a mapping from ``FrameRecord.file`` to ``[H, W, 3]`` images in ``[0, 1]``, or
#: a function of the frame returning one.
ImageSource = Mapping[str, np.ndarray] | Callable[[FrameRecord], np.ndarray]


class FrameScore(TypedDict):
    """The scores of one held-out frame."""

    file: str
    psnr: float
    ssim: float


class HeldoutMetrics(TypedDict):
    """Held-out quality: means over the split's frames, and each frame's scores."""

    psnr: float
    ssim: float
    n_frames: int
    frames: list[FrameScore]


def _ground_truth(images: ImageSource, frame: FrameRecord) -> np.ndarray:
    image = images[frame.file] if isinstance(images, Mapping) else images(frame)
    return np.asarray(image, dtype=np.float64)


def evaluate_heldout(
    render: RenderFn,
    manifest: SceneManifest,
    images: ImageSource,
    *,
    split: Split = "test",
    on_progress: ProgressFn = no_progress,
) -> HeldoutMetrics:
    """Render every frame of ``split`` and score it against its image with PSNR and SSIM.

    Args:
        render: the model's renderer (see :data:`RenderFn`); called once per frame.
        manifest: the scene; its ``camera`` is scaled to each ground-truth image's size.
        images: the ground-truth images (see :data:`ImageSource`).
        split: which frames to score (``"test"``: the held-out frames).
        on_progress: called after each frame with the fraction done (and may raise ``Cancelled``).

    Returns:
        The mean PSNR (dB) and SSIM over the frames, their count and the per-frame scores.

    Raises:
        ValueError: the split has no frames, or a rendering's shape differs from its image's.
    """
    frames = manifest.split(split)
    if not frames:
        raise ValueError(f"the scene has no {split!r} frames to evaluate")
    scores: list[FrameScore] = []
    for i, frame in enumerate(frames):
        truth = _ground_truth(images, frame)  # [H, W, 3]
        camera = manifest.camera.scaled(truth.shape[1], truth.shape[0])
        rendered = np.clip(np.asarray(render(frame, camera), dtype=np.float64), 0.0, 1.0)
        if rendered.shape != truth.shape:
            raise ValueError(f"{frame.file}: rendered {rendered.shape}, ground truth {truth.shape}")
        scores.append({"file": frame.file, "psnr": psnr(rendered, truth), "ssim": ssim(rendered, truth)})
        on_progress((i + 1) / len(frames), f"evaluated {i + 1}/{len(frames)} held-out frames")
    return {
        "psnr": float(np.mean([s["psnr"] for s in scores])),
        "ssim": float(np.mean([s["ssim"] for s in scores])),
        "n_frames": len(scores),
        "frames": scores,
    }
