"""Rendering the trained Gaussians along the shared flythrough path into an H.264 video."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gs_worker.model import camera_tensors, render
from gs_worker.rasterize import Backend
from shared.manifest import PinholeCamera
from shared.progress import ProgressFn, no_progress
from shared.video import encode_h264


def render_frames(
    params: torch.nn.ParameterDict,
    poses: np.ndarray,  # [F, 4, 4]
    camera: PinholeCamera,
    *,
    sh_degree: int,
    backend: Backend = "auto",
    on_progress: ProgressFn = no_progress,
) -> Iterator[np.ndarray]:
    """Render ``params`` from each pose, one frame at a time.

    Yields:
        ``[H, W, 3]`` uint8 RGB frames of ``camera``'s size.
    """
    device = params["means"].device
    viewmats, Ks = camera_tensors(poses, camera, device)
    for i in range(len(poses)):
        with torch.no_grad():
            colors, _, _ = render(
                params,
                viewmats[i : i + 1],
                Ks[i : i + 1],
                camera.width,
                camera.height,
                sh_degree=sh_degree,
                backend=backend,
            )
        frame = (colors[0].clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
        on_progress((i + 1) / len(poses), f"rendered flythrough frame {i + 1}/{len(poses)}")
        yield frame


def write_flythrough(
    path: Path,
    params: torch.nn.ParameterDict,
    poses: np.ndarray,  # [F, 4, 4]
    camera: PinholeCamera,
    *,
    fps: int,
    sh_degree: int,
    backend: Backend = "auto",
    on_progress: ProgressFn = no_progress,
) -> None:
    """Render the flythrough of ``params`` and encode it as H.264 at ``path``.

    Args:
        path: the video file to write (``flythrough-gs.mp4``).
        params: the trained Gaussians.
        poses: the ``cam_from_world`` poses, one a frame (:func:`shared.camera_path.flythrough_plan`).
        camera: the intrinsics and size to render at.
        fps: frame rate.
        sh_degree: SH degree to render with.
        backend: the rasterizer.
        on_progress: called after each frame; may raise ``Cancelled``.
    """
    frames = render_frames(params, poses, camera, sh_degree=sh_degree, backend=backend, on_progress=on_progress)
    encode_h264(path, frames, fps)
