"""The Gaussian-splatting stage as a pure function: a scene directory in, splats and a flythrough out.

``train_splats`` loads the scene, starts one Gaussian at each SfM point, trains, scores the
held-out frames, cleans the splats up (:mod:`gs_worker.cleanup`, scored again), exports them in every
format of :data:`gs_worker.export_all.EXPORT_FILES`, renders ``flythrough-gs.mp4`` from the cleaned
splats and writes ``report.json``. Everything is written into a temporary sibling of ``out_dir`` that is renamed into
place only when complete (:func:`shared.output_dir.staged_output_dir`), so a failed or cancelled
run leaves ``out_dir`` as it was and a run repeated gives one result.

On CUDA out-of-memory the whole run is tried once more at half the training and flythrough
resolution, then fails with ``OUT_OF_MEMORY``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from gs_worker.cleanup import CleanupReport
from gs_worker.export_all import EXPORT_FILES, ExportedFile, clean_for_export, write_exports
from gs_worker.flythrough import write_flythrough
from gs_worker.init import init_splats
from gs_worker.model import camera_tensors, create_params, export_arrays, render
from gs_worker.overlay import static_overlay_mask
from gs_worker.rasterize import Backend, resolve_backend
from gs_worker.rasterize_numba import compiled_rasterizer_ready, warm_up_compiled_rasterizer
from gs_worker.scene_frame import ExportFrame, export_frame
from gs_worker.train import make_strategy, train
from shared.artifacts import GS_FLYTHROUGH_FILE, REPORT_FILE
from shared.camera_path import flythrough_plan
from shared.device import device_name, resolve_device
from shared.errors import ErrorCode, StageError
from shared.heldout import HeldoutMetrics, evaluate_heldout
from shared.manifest import FrameRecord, PinholeCamera
from shared.options.gs import SplatOptions
from shared.output_dir import staged_output_dir
from shared.progress import ProgressFn, no_progress, sub_progress
from shared.scene_loader import SceneData, load_scene
from shared.training_metrics import TrainingMetrics, heldout_fields

logger = logging.getLogger(__name__)

#: The files the stage writes into ``out_dir``, published in this order (the report, marking completion, last).
ARTIFACTS: tuple[str, ...] = (*EXPORT_FILES, GS_FLYTHROUGH_FILE, REPORT_FILE)

# Shares of the stage's progress.
_LOAD, _INIT_EVAL, _TRAIN, _EVAL, _EXPORT = 0.03, 0.05, 0.85, 0.88, 0.90


class SplatMetrics(TrainingMetrics):
    """The stage's metrics, written to ``report.json`` and recorded on the job.

    The held-out scores (:class:`~shared.training_metrics.TrainingMetrics`) are those of the exported
    (trained, cleaned) splats; ``initial_*`` those of the untrained initial Gaussians.
    """

    gaussian_count: int = Field(description="Gaussians exported")
    initial_gaussian_count: int = Field(description="Gaussians at the start (one per SfM point)")
    backend: str = Field(description="rasterizer: 'cpu' (ours, compiled), 'torch' (ours, pure PyTorch) or 'gsplat'")
    width: int = Field(description="training image width")
    height: int = Field(description="training image height")
    sh_degree: int
    strategy: str
    flythrough_width: int = Field(description="flythrough video width, pixels")
    flythrough_height: int = Field(description="flythrough video height, pixels")
    flythrough_fps: int = Field(description="flythrough frame rate")
    retried_at_lower_resolution: bool = Field(description="a CUDA out-of-memory made the run start over smaller")
    overlay_pixels: int = Field(
        default=0, description="pixels of the input video's screen-fixed overlay, left out of every held-out score"
    )
    # --- clean-up and exports (gs_worker/export_all.py) ---
    heldout_psnr_before_cleanup: float = Field(description="held-out PSNR (dB) of the trained splats before clean-up")
    heldout_ssim_before_cleanup: float = Field(description="held-out SSIM before clean-up")
    cleanup: CleanupReport = Field(description="splats each clean-up step removed")
    cleanup_floaters_undone: bool = Field(description="the floater steps cost too much PSNR and were undone")
    export_frame: ExportFrame = Field(description="the exported files' frame: up, ground, export_from_colmap, scale")
    files: list[ExportedFile] = Field(default_factory=list, description="each exported file's size and splat count")


class SplatResult(BaseModel):
    """What ``train_splats`` produced."""

    model_config = ConfigDict(frozen=True)

    out_dir: Path
    metrics: SplatMetrics


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def evaluate_splats(
    params: torch.nn.ParameterDict,
    data: SceneData,
    sh_degree: int,
    backend: Backend = "auto",
    on_progress: ProgressFn = no_progress,
    overlay: np.ndarray | None = None,
) -> HeldoutMetrics:
    """Score the Gaussians on the scene's held-out frames (:func:`shared.heldout.evaluate_heldout`).

    Args:
        params: the Gaussians (see :func:`gs_worker.model.create_params`).
        data: the scene at its training size (its images are the ground truth).
        sh_degree: SH degree to render with.
        backend: the rasterizer.
        on_progress: called after each frame; may raise ``Cancelled``.
        overlay: the input video's screen-fixed overlay ``[H, W]`` at the training size
            (:mod:`gs_worker.overlay`): its pixels are not the scene and are not scored (the render
            takes the ground truth's values there).

    Returns:
        Mean PSNR and SSIM, the frame count and the per-frame scores.
    """
    device = params["means"].device

    def render_frame(frame: FrameRecord, camera: PinholeCamera) -> np.ndarray:
        viewmats, Ks = camera_tensors(frame.cam_from_world_matrix()[None], camera, device)
        with torch.no_grad():
            colors, _, _ = render(
                params, viewmats, Ks, camera.width, camera.height, sh_degree=sh_degree, backend=backend
            )
        image = colors[0].clamp(0.0, 1.0).cpu().numpy()
        if overlay is not None and overlay.shape == image.shape[:2]:
            image = np.where(overlay[:, :, None], data.images[frame.file], image)
        return image

    return evaluate_heldout(render_frame, data.manifest, data.images, on_progress=on_progress)


def _run(
    scene_dir: Path,
    work_dir: Path,
    options: SplatOptions,
    device: torch.device,
    backend: Backend,
    on_progress: ProgressFn,
    started: float,
    retried: bool,
) -> SplatMetrics:
    """One attempt at the whole stage, writing the artifacts into ``work_dir``."""
    on_progress(0.0, "loading the scene")
    data = load_scene(scene_dir, options.max_long_side)
    splats = init_splats(
        data.points_xyz,
        data.points_rgb,
        sh_degree=options.sh_degree,
        init_opacity=options.initial_opacity(),
        init_scale=options.initial_scale(),
        max_points=options.max_gaussians,
        seed=options.seed,
    )
    params = create_params(splats, device)
    initial_count = len(splats["means"])
    logger.info(
        "training %d Gaussians on %d frames of %dx%d on %s",
        initial_count,
        len(data.train_frames),
        data.camera.width,
        data.camera.height,
        device,
    )
    if resolve_backend(backend, device) == "cpu" and not compiled_rasterizer_ready():
        on_progress(_LOAD, "preparing the compiled CPU rasterizer (it compiles on the first run only)")
        warm_up_compiled_rasterizer()
    on_progress(_LOAD, f"starting from {initial_count} SfM points")
    overlay = static_overlay_mask(data.images[f.file] for f in data.manifest.frames)
    initial = evaluate_splats(params, data, 0, backend, sub_progress(on_progress, _LOAD, _INIT_EVAL), overlay)

    t0 = time.perf_counter()
    stats = train(
        params, data, options, device, backend=backend, on_progress=sub_progress(on_progress, _INIT_EVAL, _TRAIN)
    )
    train_seconds = time.perf_counter() - t0

    trained = evaluate_splats(
        params, data, options.sh_degree, backend, sub_progress(on_progress, _TRAIN, _EVAL), overlay
    )
    on_progress(_EVAL, f"held-out PSNR {trained['psnr']:.2f} dB (from {initial['psnr']:.2f} dB); cleaning up")
    frame = export_frame(data.manifest, data.points_xyz)
    cleaned = clean_for_export(
        export_arrays(params),
        data.manifest,
        data.points_xyz,
        frame,
        options,
        trained,
        lambda splats: evaluate_splats(
            create_params(splats, device), data, options.sh_degree, backend, overlay=overlay
        ),
        overlay=overlay,
    )
    final = cleaned.metrics
    on_progress(_EVAL, f"kept {cleaned.report.kept_count} of {cleaned.report.input_count} splats; exporting")
    files = write_exports(work_dir, cleaned.splats, data.manifest, frame)
    fly_poses, fly_camera = flythrough_plan(data.manifest, options)
    write_flythrough(
        work_dir / GS_FLYTHROUGH_FILE,
        create_params(cleaned.splats, device),
        fly_poses,
        fly_camera,
        fps=options.flythrough_fps,
        sh_degree=options.sh_degree,
        backend=backend,
        on_progress=sub_progress(on_progress, _EXPORT, 1.0),
    )
    return SplatMetrics(
        **heldout_fields(initial, final),
        train_psnr=stats.train_psnr,
        gaussian_count=cleaned.report.kept_count,
        initial_gaussian_count=initial_count,
        iterations=stats.iterations,
        seconds=time.perf_counter() - started,
        train_seconds=train_seconds,
        device=device_name(device),
        backend=resolve_backend(backend, device),
        width=data.camera.width,
        height=data.camera.height,
        sh_degree=options.sh_degree,
        strategy=options.strategy,
        flythrough_frames=len(fly_poses),
        flythrough_width=fly_camera.width,
        flythrough_height=fly_camera.height,
        flythrough_fps=options.flythrough_fps,
        retried_at_lower_resolution=retried,
        overlay_pixels=0 if overlay is None else int(overlay.sum()),
        heldout_psnr_before_cleanup=trained["psnr"],
        heldout_ssim_before_cleanup=trained["ssim"],
        cleanup=cleaned.report,
        cleanup_floaters_undone=cleaned.floaters_undone,
        export_frame=frame,
        files=files,
    )


def train_splats(
    scene_dir: Path,
    out_dir: Path,
    options: SplatOptions,
    on_progress: ProgressFn = no_progress,
    *,
    backend: Backend = "auto",
) -> SplatResult:
    """Train Gaussian splats on a scene and write the export files, ``flythrough-gs.mp4`` and ``report.json``.

    Args:
        scene_dir: the SfM stage's scene directory (``scene.json``, images, ``points.ply``).
        out_dir: where the files of :data:`ARTIFACTS` go; created (or, if it exists, the files are replaced in it).
        options: the stage options (a preset with overrides).
        on_progress: ``(fraction, message)`` callback; raising ``Cancelled`` from it stops the stage
            and leaves ``out_dir`` as it was.
        backend: the rasterizer (``auto``: gsplat on CUDA, ours on the CPU).

    Returns:
        The output directory, the artifact names and the metrics.

    Raises:
        StageError: ``INVALID_SCENE`` (unreadable scene), ``CUDA_UNAVAILABLE``, ``INVALID_OPTIONS``
            (``mcmc`` off CUDA), ``TRAINING_DIVERGED``, ``OUT_OF_MEMORY``, or ``Cancelled``.
    """
    started = time.perf_counter()
    scene_dir, out_dir = Path(scene_dir), Path(out_dir)
    device = resolve_device(options.device)
    make_strategy(options, device)  # refuses options the device cannot run before any work
    with staged_output_dir(out_dir, ARTIFACTS) as work_dir:
        attempt_options, retried = options, False
        while True:
            try:
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    torch.manual_seed(attempt_options.seed)
                    metrics = _run(scene_dir, work_dir, attempt_options, device, backend, on_progress, started, retried)
                break
            except Exception as exc:
                if not _is_out_of_memory(exc):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                if retried:
                    raise StageError(
                        ErrorCode.OUT_OF_MEMORY,
                        f"Training ran out of memory on {device_name(device)} even at "
                        f"{attempt_options.max_long_side} px (long side).",
                        details={"max_long_side": attempt_options.max_long_side},
                    ) from exc
                logger.warning("out of memory at %d px; retrying at half resolution", attempt_options.max_long_side)
                attempt_options = attempt_options.model_copy(
                    update={
                        "max_long_side": max(32, attempt_options.max_long_side // 2),
                        "flythrough_long_side": max(32, attempt_options.flythrough_long_side // 2),
                    }
                )
                retried = True
                on_progress(0.0, f"out of memory: starting over at {attempt_options.max_long_side} px")
        (work_dir / REPORT_FILE).write_text(json.dumps(metrics.model_dump(mode="json"), indent=2))
    on_progress(1.0, f"done: held-out PSNR {metrics.heldout_psnr:.2f} dB, {metrics.gaussian_count} Gaussians")
    return SplatResult(out_dir=out_dir, metrics=metrics)
