"""The TensoRF stage function: a scene directory in, a flythrough, a model file and a report out."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from nerf_worker.checkpoint import save_tensorf
from nerf_worker.depth_targets import DepthTargets, depth_targets
from nerf_worker.model import TensorVM, grid_resolution
from nerf_worker.render import render_image
from nerf_worker.scene_box import scene_box
from nerf_worker.train import TrainStats, train
from shared.artifacts import NERF_FLYTHROUGH_FILE, NERF_MODEL_FILE, REPORT_FILE
from shared.device import device_name, resolve_device
from shared.errors import ErrorCode, StageError
from shared.heldout import HeldoutMetrics, evaluate_heldout
from shared.manifest import FrameRecord, PinholeCamera
from shared.options.nerf import TensorfOptions
from shared.output_dir import staged_output_dir
from shared.progress import ProgressFn, no_progress, sub_progress
from shared.scene_loader import SceneData, load_scene
from shared.training_metrics import TrainingMetrics, heldout_fields

logger = logging.getLogger(__name__)


class NerfMetrics(TrainingMetrics):
    """The stage's metrics, written to ``report.json`` and recorded on the job."""

    stage: Literal["nerf"] = "nerf"
    grid_resolution: list[int] = Field(description="the final grid's voxels along x, y and z")
    n_voxels: int = Field(description="voxels of the final grid")
    alpha_mask_empty_fraction: float = Field(description="share of the scene box the alpha mask skips")
    scene_box: list[list[float]] = Field(description="the field's box: [[x, y, z] min, [x, y, z] max]")
    image_size: list[int] = Field(description="training image [width, height]")
    train_frames: int = Field(description="training views")
    depth_weight: float = Field(description="weight of the SfM depth loss (0: off)")
    depth_rays: int = Field(description="SfM depth targets in the training views")
    schedule: list[str] = Field(description="what the grid schedule did, step by step")


@dataclass(frozen=True)
class NerfResult:
    """What :func:`train_tensorf` produced."""

    out_dir: Path
    flythrough: Path  # out_dir / flythrough-nerf.mp4
    model: Path  # out_dir / tensorf.pt
    report: Path  # out_dir / report.json
    metrics: NerfMetrics  # the report's contents


def build_model(data: SceneData, options: TensorfOptions, device: torch.device | str) -> TensorVM:
    """A fresh field over the scene box of ``data`` at the initial grid size, seeded by ``options``."""
    centers = np.stack([f.camera_center() for f in data.manifest.frames])
    aabb = torch.as_tensor(scene_box(data.points_xyz, centers))
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


def evaluate(model: TensorVM, data: SceneData, options: TensorfOptions, on_progress: ProgressFn) -> HeldoutMetrics:
    """Held-out PSNR / SSIM over the scene's test frames at the training resolution."""

    def render(frame: FrameRecord, camera: PinholeCamera) -> np.ndarray:
        return render_view(model, camera, frame.cam_from_world_matrix(), options)

    return evaluate_heldout(render, data.manifest, data.images, on_progress=on_progress)


def render_flythrough(
    model: TensorVM, data: SceneData, options: TensorfOptions, path: Path, on_progress: ProgressFn
) -> int:
    """Render the shared flythrough path to an H.264 file; returns the frame count."""
    from shared.camera_path import flythrough_plan
    from shared.video import encode_h264

    path_poses, camera = flythrough_plan(data.manifest, options)
    n_frames = len(path_poses)

    def frames() -> Iterator[np.ndarray]:
        for i, pose in enumerate(path_poses):
            rgb = render_view(model, camera, pose, options)
            on_progress((i + 1) / n_frames, f"flythrough frame {i + 1}/{n_frames}")
            yield np.round(rgb * 255).astype(np.uint8)

    encode_h264(path, frames(), options.flythrough_fps)
    return n_frames


def _metrics(
    model: TensorVM,
    data: SceneData,
    depth: DepthTargets,
    options: TensorfOptions,
    stats: TrainStats,
    scores: tuple[HeldoutMetrics, HeldoutMetrics],
    seconds: tuple[float, float],
    flythrough_frames: int,
    device: torch.device,
) -> NerfMetrics:
    """The metrics of ``report.json``.

    Args:
        model: the trained field.
        data: the scene it was trained on.
        depth: the depth targets it was trained with.
        options: the stage options.
        stats: what training did.
        scores: held-out scores of the untrained and of the trained field.
        seconds: wall time of the whole stage and of the training loop.
        flythrough_frames: frames of the flythrough written.
        device: the device it trained on.
    """
    return NerfMetrics(
        **heldout_fields(*scores),
        train_psnr=stats.final_train_psnr,
        iterations=stats.iterations,
        seconds=round(seconds[0], 3),
        train_seconds=round(seconds[1], 3),
        device=device_name(device),
        flythrough_frames=flythrough_frames,
        grid_resolution=list(model.resolution),
        n_voxels=int(np.prod(model.resolution)),
        alpha_mask_empty_fraction=round(1.0 - float(model.alpha_mask.float().mean()), 4),
        scene_box=model.aabb.tolist(),
        image_size=[data.camera.width, data.camera.height],
        train_frames=len(data.train_frames),
        depth_weight=options.depth_weight,
        depth_rays=len(depth.view),
        schedule=stats.schedule,
    )


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
    started = time.monotonic()
    out_dir = Path(out_dir)
    on_progress(0.0, "loading the scene")
    device = resolve_device(options.device)
    data = load_scene(scene_dir, options.max_long_side)
    depth = depth_targets(data, Path(scene_dir), error_scale_px=options.depth_error_scale_px)
    try:
        with staged_output_dir(out_dir, (NERF_FLYTHROUGH_FILE, NERF_MODEL_FILE, REPORT_FILE)) as tmp_dir:
            model = build_model(data, options, device)
            initial = evaluate(model, data, options, sub_progress(on_progress, 0.01, 0.03))
            train_started = time.monotonic()
            stats = train(model, data, depth, options, on_progress=sub_progress(on_progress, 0.03, 0.85))
            train_seconds = time.monotonic() - train_started
            final = evaluate(model, data, options, sub_progress(on_progress, 0.85, 0.88))
            flythrough_frames = render_flythrough(
                model, data, options, tmp_dir / NERF_FLYTHROUGH_FILE, sub_progress(on_progress, 0.88, 0.99)
            )
            model_metadata = {
                "camera": data.camera.model_dump(),
                "min_near": options.min_near,
                "options": options.model_dump(mode="json"),
            }
            save_tensorf(tmp_dir / NERF_MODEL_FILE, model, model_metadata)
            seconds = (time.monotonic() - started, train_seconds)
            metrics = _metrics(model, data, depth, options, stats, (initial, final), seconds, flythrough_frames, device)
            (tmp_dir / REPORT_FILE).write_text(json.dumps(metrics.model_dump(mode="json"), indent=2))
    except (torch.OutOfMemoryError, MemoryError) as exc:
        where = "GPU" if device.type == "cuda" else "machine"
        raise StageError(
            ErrorCode.OUT_OF_MEMORY,
            f"The {where} ran out of memory while training TensoRF at {data.camera.width}×{data.camera.height}.",
        ) from exc
    on_progress(1.0, f"held-out PSNR {metrics.heldout_psnr:.2f} dB")
    logger.info(
        "TensoRF finished: held-out PSNR %.2f dB, %d steps, %.1f s",
        metrics.heldout_psnr,
        metrics.iterations,
        metrics.seconds,
    )
    return NerfResult(
        out_dir=out_dir,
        flythrough=out_dir / NERF_FLYTHROUGH_FILE,
        model=out_dir / NERF_MODEL_FILE,
        report=out_dir / REPORT_FILE,
        metrics=metrics,
    )
