"""The optimisation loop: photometric MSE, L1 / TV regularisers, DS-NeRF depth loss, lr decay.

Each step renders ``batch_rays`` random pixels of the training views and, when depth supervision is
on, ``depth_batch_rays`` rays through SfM points seen in those views. The depth loss is the
reliability-weighted mean squared difference between a ray's expected distance (light that leaves
the box counts at the box exit) and the point's distance. Learning rates decay exponentially to
``lr_decay_ratio`` of their start over the run; the optimiser is rebuilt, at the decayed rates,
whenever the schedule replaces the factors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from nerf_worker.depth_targets import DepthTargets
from nerf_worker.model import TensorVM
from nerf_worker.rays import rays_at_pixels
from nerf_worker.render import render_rays
from nerf_worker.schedule import GridSchedule, ScheduleState
from shared.errors import ErrorCode, StageError
from shared.options.nerf import TensorfOptions
from shared.progress import ProgressFn, no_progress
from shared.scene_loader import SceneData

#: Steps between progress reports (each is a cancellation point).
PROGRESS_EVERY = 10


@dataclass
class TrainStats:
    """What happened during training."""

    iterations: int = 0
    final_loss: float = float("nan")
    final_train_psnr: float = float("nan")
    schedule: list[str] = field(default_factory=list)


def schedule_for(options: TensorfOptions) -> GridSchedule:
    """The grid schedule of ``options``, its fractions turned into step numbers."""

    def steps(fractions: tuple[float, ...]) -> tuple[int, ...]:
        return tuple(sorted({round(f * options.iterations) for f in fractions if round(f * options.iterations) > 0}))

    upsample = steps(options.upsample_at)
    return GridSchedule(
        n_voxels_init=options.n_voxels_init,
        n_voxels_final=options.n_voxels_final if upsample else options.n_voxels_init,
        upsample_steps=upsample,
        alpha_mask_steps=steps(options.alpha_mask_at),
        alpha_mask_threshold=options.alpha_mask_threshold,
    )


def make_optimizer(model: TensorVM, options: TensorfOptions, lr_factor: float) -> torch.optim.Adam:
    """Adam over the factors (``lr_grid``) and the SH basis and background (``lr_network``)."""
    grid = [*model.density_planes, *model.density_lines, *model.appearance_planes, *model.appearance_lines]
    network = [*model.appearance_basis.parameters(), model.background_sh]
    return torch.optim.Adam(
        [
            {"params": grid, "lr": options.lr_grid * lr_factor, "base_lr": options.lr_grid},
            {"params": network, "lr": options.lr_network * lr_factor, "base_lr": options.lr_network},
        ],
        betas=(0.9, 0.99),
    )


def depth_loss(expected: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Reliability-weighted mean squared depth error.

    Args:
        expected: rendered expected distances.  # [M]
        target: SfM point distances.  # [M]
        weight: reliabilities.  # [M]
    """
    return (weight * (expected - target).pow(2)).sum() / weight.sum().clamp(min=1e-8)


def regularisers(model: TensorVM, options: TensorfOptions) -> Tensor:
    """The weighted L1 sparsity and total-variation terms."""
    total = options.l1_weight * model.density_l1()
    if options.tv_weight_density or options.tv_weight_appearance:
        tv_density, tv_appearance = model.total_variation()
        total = total + options.tv_weight_density * tv_density + options.tv_weight_appearance * tv_appearance
    return total


def train(
    model: TensorVM,
    data: SceneData,
    depth: DepthTargets,
    options: TensorfOptions,
    *,
    on_progress: ProgressFn = no_progress,
    state: ScheduleState | None = None,
) -> TrainStats:
    """Optimise ``model`` on ``data`` for ``options.iterations`` steps.

    Args:
        model: the field, on the training device.
        data: the loaded scene (its training frames are the views).
        depth: the SfM depth targets in those views (:func:`nerf_worker.depth_targets.depth_targets`).
        options: the stage options (iterations, batch sizes, learning rates, loss weights).
        on_progress: called every few steps with the fraction done; may raise ``Cancelled``.
        state: schedule state to continue from (a fresh one when omitted).

    Returns:
        Loss and schedule history.

    Raises:
        StageError: ``TRAINING_DIVERGED`` when the loss stops being finite.
    """
    device = model.aabb.device
    generator = torch.Generator(device="cpu").manual_seed(options.seed)
    schedule = schedule_for(options)
    state = state or schedule.initialize_state()
    # uint8 on the device: a quarter of the memory of the loader's floats (they came from uint8 files)
    train_images = np.round(data.stack(data.train_frames) * 255.0).astype(np.uint8)
    images = torch.as_tensor(train_images, device=device)  # [T, H, W, 3] uint8
    poses = torch.as_tensor(data.poses(data.train_frames), device=device)  # [T, 4, 4]
    n_views, height, width = images.shape[:3]
    camera = data.camera
    use_depth = options.depth_weight > 0 and len(depth.view) > 0
    if use_depth:
        d_view = torch.as_tensor(depth.view, device=device)
        d_uv = torch.as_tensor(depth.uv, device=device)
        d_dist = torch.as_tensor(depth.distance, device=device)
        d_weight = torch.as_tensor(depth.weight, device=device)

    decay = options.lr_decay_ratio ** (1.0 / max(options.iterations, 1))
    optimizer = make_optimizer(model, options, 1.0)
    stats = TrainStats()
    for step in range(options.iterations):
        lr_factor = decay**step
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor

        pick = torch.randint(0, n_views * height * width, (options.batch_rays,), generator=generator).to(device)
        view, pixel = pick // (height * width), pick % (height * width)
        uv = torch.stack([(pixel % width).float(), (pixel // width).float()], dim=-1) + 0.5
        origins, dirs = rays_at_pixels(camera, poses[view], uv)
        target = images[view, pixel // width, pixel % width].float() / 255.0  # [B, 3]
        out = render_rays(model, origins, dirs, min_near=options.min_near, jitter=True, generator=generator)
        mse = (out.rgb - target).pow(2).mean()
        loss = mse + regularisers(model, options)
        if use_depth:
            k = torch.randint(0, len(d_view), (options.depth_batch_rays,), generator=generator).to(device)
            d_origins, d_dirs = rays_at_pixels(camera, poses[d_view[k]], d_uv[k])
            d_out = render_rays(model, d_origins, d_dirs, min_near=options.min_near, jitter=True, generator=generator)
            loss = loss + options.depth_weight * depth_loss(d_out.depth, d_dist[k], d_weight[k])

        if not torch.isfinite(loss):
            raise StageError(
                ErrorCode.TRAINING_DIVERGED,
                f"TensoRF training diverged at step {step + 1} of {options.iterations} (the loss became {loss.item()}).",
                details={"step": step + 1},
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        event = schedule.step_post_backward(step, model, state)
        if event.params_replaced:
            optimizer = make_optimizer(model, options, lr_factor)

        stats.iterations = step + 1
        if (step + 1) % PROGRESS_EVERY == 0 or step + 1 == options.iterations:
            stats.final_loss = float(loss.item())
            stats.final_train_psnr = -10.0 * math.log10(max(float(mse.item()), 1e-10))
            on_progress(
                (step + 1) / options.iterations,
                f"step {step + 1}/{options.iterations}, train PSNR {stats.final_train_psnr:.2f} dB",
            )
    stats.schedule = list(state.history)
    return stats
