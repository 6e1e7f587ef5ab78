"""The TensoRF stage function: a scene directory in, a flythrough, a model file and a report out."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nerf_worker.checkpoint import save_tensorf
from nerf_worker.model import TensorVM, grid_resolution
from nerf_worker.render import render_image
from nerf_worker.scene_box import scene_box
from nerf_worker.scene_data import SceneData, load_scene
from nerf_worker.train import TrainStats, train
from shared.artifacts import NERF_FLYTHROUGH_FILE, NERF_MODEL_FILE, REPORT_FILE
from shared.errors import ErrorCode, StageError
from shared.manifest import FrameRecord, PinholeCamera
from shared.options.nerf import TensorfOptions
from shared.output_dir import staged_output_dir
from shared.progress import ProgressFn, no_progress, sub_progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NerfResult:
    """What :func:`train_tensorf` produced."""

    out_dir: Path
    flythrough: Path  # out_dir / flythrough-nerf.mp4
    model: Path  # out_dir / tensorf.pt
    report: Path  # out_dir / report.json
    metrics: dict[str, Any]  # the report's contents

    @property
    def artifacts(self) -> dict[str, Path]:
        """Artifact files by name (the service uploads ``report.json`` as ``report-nerf.json``)."""
        return {NERF_FLYTHROUGH_FILE: self.flythrough, NERF_MODEL_FILE: self.model, REPORT_FILE: self.report}


def resolve_device(device: str) -> str:
    """``"auto"``: CUDA when available, else CPU. ``"cuda"`` without CUDA is ``CUDA_UNAVAILABLE``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise StageError(ErrorCode.CUDA_UNAVAILABLE, "CUDA was requested but no CUDA device is available.")
    return device


def build_model(data: SceneData, options: TensorfOptions, device: str) -> TensorVM:
    """A fresh field over the scene box of ``data`` at the initial grid size, seeded by ``options``."""
    import torch

    centers = np.stack([f.camera_center() for f in data.manifest.frames])
    aabb = torch.as_tensor(scene_box(data.points, centers))
    torch.manual_seed(options.seed)
    model = TensorVM(
        aabb,
        grid_resolution(aabb, options.n_voxels_init),
        density_components=options.density_components,
        appearance_components=options.appearance_components,
        step_ratio=options.step_ratio,
        density_shift=options.density_shift,
    )
    return model.to(device)


def render_view(model: TensorVM, camera: PinholeCamera, pose: np.ndarray, options: TensorfOptions) -> np.ndarray:
    """One view as the stage renders it (held-out frames and flythrough alike): RGB in ``[0, 1]``, ``[H, W, 3]``."""
    return render_image(
        model,
        camera,
        pose,
        min_near=options.min_near,
        chunk=options.render_chunk,
        step_ratio=options.render_step_ratio,
    ).rgb


def evaluate(model: TensorVM, data: SceneData, options: TensorfOptions, on_progress: ProgressFn) -> dict[str, Any]:
    """Held-out PSNR / SSIM over the scene's test frames at the training resolution."""
    from shared.heldout import evaluate_heldout

    def render(frame: FrameRecord, camera: PinholeCamera) -> np.ndarray:
        return render_view(model, camera, frame.cam_from_world_matrix(), options)

    return dict(evaluate_heldout(render, data.manifest, data.test_images, on_progress=on_progress))


def render_flythrough(
    model: TensorVM, data: SceneData, options: TensorfOptions, path: Path, on_progress: ProgressFn
) -> int:
    """Render the shared flythrough path to an H.264 file; returns the frame count."""
    from shared.camera_path import scene_flythrough_path
    from shared.video import encode_h264, output_size

    cam = data.manifest.camera
    camera = cam.scaled(*output_size(cam.width, cam.height, options.flythrough_long_side))
    n_frames = max(2, round(options.flythrough_seconds * options.flythrough_fps))
    path_poses = scene_flythrough_path(data.manifest, n_frames, kind=options.flythrough_path)

    def frames() -> Iterator[np.ndarray]:
        for i, pose in enumerate(path_poses):
            rgb = render_view(model, camera, pose, options)
            on_progress((i + 1) / n_frames, f"flythrough frame {i + 1}/{n_frames}")
            yield np.round(rgb * 255).astype(np.uint8)

    encode_h264(path, frames(), options.flythrough_fps)
    return n_frames


def _report(
    model: TensorVM,
    data: SceneData,
    options: TensorfOptions,
    stats: TrainStats,
    initial: dict[str, Any] | None,
    final: dict[str, Any] | None,
) -> dict[str, Any]:
    """The metrics of ``report.json`` (the caller adds timings and the flythrough's frame count)."""
    return {
        "stage": "nerf",
        "heldout_psnr": final["psnr"] if final else None,
        "heldout_ssim": final["ssim"] if final else None,
        "heldout_frames": final["n_frames"] if final else 0,
        "initial_psnr": initial["psnr"] if initial else None,
        "train_psnr": stats.final_train_psnr,
        "iterations": stats.iterations,
        "grid_resolution": list(model.resolution),
        "n_voxels": int(np.prod(model.resolution)),
        "alpha_mask_empty_fraction": round(1.0 - float(model.alpha_mask.float().mean()), 4),
        "scene_box": model.aabb.tolist(),
        "image_size": [data.camera.width, data.camera.height],
        "train_frames": len(data.train_images),
        "depth_weight": options.depth_weight,
        "depth_rays": len(data.depth.view),
        "device": model.aabb.device.type,
        "schedule": stats.schedule,
    }


def train_tensorf(
    scene_dir: Path,
    out_dir: Path,
    options: TensorfOptions,
    on_progress: ProgressFn = no_progress,
) -> NerfResult:
    """Train a TensoRF radiance field on a posed scene and export its flythrough, model and report.

    Args:
        scene_dir: a scene directory from the SfM stage (``scene.json``, images, ``points.ply``,
            ``tracks.npz``).
        out_dir: receives ``flythrough-nerf.mp4``, ``tensorf.pt`` and ``report.json``, all written
            to a temporary sibling directory first and renamed into place when complete.
        options: the stage options.
        on_progress: progress callback; raises ``Cancelled`` to stop the stage.

    Returns:
        The output paths and the report's metrics.

    Raises:
        StageError: ``INVALID_SCENE``, ``CUDA_UNAVAILABLE``, ``TRAINING_DIVERGED``, ``OUT_OF_MEMORY``;
            ``Cancelled`` from ``on_progress``.
    """
    import torch

    started = time.monotonic()
    out_dir = Path(out_dir)
    on_progress(0.0, "loading the scene")
    device = resolve_device(options.device)
    data = load_scene(scene_dir, max_long_side=options.max_long_side, depth_error_scale_px=options.depth_error_scale_px)
    try:
        with staged_output_dir(out_dir, (NERF_FLYTHROUGH_FILE, NERF_MODEL_FILE, REPORT_FILE)) as tmp_dir:
            model = build_model(data, options, device)
            has_test = bool(data.test_images)
            initial = evaluate(model, data, options, sub_progress(on_progress, 0.01, 0.03)) if has_test else None
            train_started = time.monotonic()
            stats = train(model, data, options, on_progress=sub_progress(on_progress, 0.03, 0.85))
            train_seconds = time.monotonic() - train_started
            final = evaluate(model, data, options, sub_progress(on_progress, 0.85, 0.88)) if has_test else None
            flythrough_frames = render_flythrough(
                model, data, options, tmp_dir / NERF_FLYTHROUGH_FILE, sub_progress(on_progress, 0.88, 0.99)
            )
            metrics = _report(model, data, options, stats, initial, final)
            metrics["train_seconds"] = round(train_seconds, 3)
            metrics["flythrough_frames"] = flythrough_frames
            model_metadata = {
                "camera": data.camera.model_dump(),
                "min_near": options.min_near,
                "options": options.model_dump(mode="json"),
            }
            save_tensorf(tmp_dir / NERF_MODEL_FILE, model, model_metadata)
            metrics["seconds"] = round(time.monotonic() - started, 3)
            (tmp_dir / REPORT_FILE).write_text(json.dumps(metrics, indent=2))
    except (torch.OutOfMemoryError, MemoryError) as exc:
        where = "GPU" if device == "cuda" else "machine"
        raise StageError(
            ErrorCode.OUT_OF_MEMORY,
            f"The {where} ran out of memory while training TensoRF at {data.camera.width}×{data.camera.height}.",
        ) from exc
    on_progress(1.0, f"held-out PSNR {metrics['heldout_psnr']:.2f} dB" if has_test else "done")
    logger.info("TensoRF finished: %s", {k: metrics[k] for k in ("heldout_psnr", "iterations", "seconds")})
    return NerfResult(
        out_dir=out_dir,
        flythrough=out_dir / NERF_FLYTHROUGH_FILE,
        model=out_dir / NERF_MODEL_FILE,
        report=out_dir / REPORT_FILE,
        metrics=metrics,
    )
