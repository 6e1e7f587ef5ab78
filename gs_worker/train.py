"""The training loop: one image a step, L1 + SSIM loss, SH bands raised over time, gsplat densification.

One loop serves both devices: the rasterizer behind :func:`gs_worker.model.render` is gsplat's on
CUDA and ours on the CPU, and both return what gsplat's strategies read.

- ``strategy="default"``: gsplat's ``DefaultStrategy`` (clone, split, prune), with the Gaussian
  count held at ``max_gaussians`` by pruning the least opaque beyond it after each refinement.
- ``strategy="mcmc"``: gsplat's ``MCMCStrategy`` with ``cap_max = max_gaussians`` and the opacity
  and scale regularisers of gsplat's MCMC recipe. Its relocation and noise ops need CUDA.
- ``strategy="none"``: a fixed set of Gaussians.

A non-finite loss or parameter stops training with ``TRAINING_DIVERGED``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from gs_worker.losses import photometric_loss, psnr
from gs_worker.model import all_finite, camera_tensors, create_optimizers, means_scheduler, render
from gs_worker.rasterize import Backend
from shared.errors import ErrorCode, StageError
from shared.options.gs import SplatOptions
from shared.progress import ProgressFn, no_progress
from shared.scene_loader import SceneData

logger = logging.getLogger(__name__)

#: Weights of gsplat's MCMC regularisers (mean opacity, mean scale).
MCMC_OPACITY_REG = 0.01
MCMC_SCALE_REG = 0.01
#: Steps between checks that every parameter is still finite.
FINITE_CHECK_EVERY = 100


@dataclass
class TrainStats:
    """What happened during training.

    Attributes:
        iterations: steps run.
        counts: ``(step, gaussian count)`` after every densification round, starting with step 0.
        train_psnr: PSNR (dB) of the last steps' renderings against their images (a running mean).
    """

    iterations: int = 0
    counts: list[tuple[int, int]] = field(default_factory=list)
    train_psnr: float = float("nan")


def make_strategy(options: SplatOptions, device: torch.device) -> Any:
    """gsplat's densification strategy for ``options`` (None for ``strategy="none"``).

    Raises:
        StageError: ``INVALID_OPTIONS`` for ``mcmc`` on a device other than CUDA.
    """
    if options.strategy == "none":
        return None
    if options.strategy == "mcmc":
        if device.type != "cuda":
            raise StageError(
                ErrorCode.INVALID_OPTIONS,
                "The 'mcmc' densification strategy needs a CUDA GPU; on the CPU use strategy 'default'.",
                details={"strategy": "mcmc", "device": device.type},
            )
        from gsplat.strategy import MCMCStrategy

        return MCMCStrategy(
            cap_max=options.max_gaussians,
            refine_start_iter=options.refine_start_iter,
            refine_stop_iter=options.refine_stop_iter,
            refine_every=options.refine_every,
            min_opacity=options.prune_opacity,
        )
    from gsplat.strategy import DefaultStrategy

    return DefaultStrategy(
        prune_opa=options.prune_opacity,
        grow_grad2d=options.grow_grad2d,
        refine_start_iter=options.refine_start_iter,
        refine_stop_iter=options.refine_stop_iter,
        refine_every=options.refine_every,
    )


def _enforce_cap(params: torch.nn.ParameterDict, optimizers: dict, state: dict, cap: int) -> int:
    """Prune the least opaque Gaussians beyond ``cap``; returns how many were removed."""
    from gsplat.strategy.ops import remove

    excess = len(params["means"]) - cap
    if excess <= 0:
        return 0
    order = torch.argsort(params["opacities"].detach().flatten())
    mask = torch.zeros(len(order), dtype=torch.bool, device=order.device)
    mask[order[:excess]] = True
    remove(params=params, optimizers=optimizers, state=state, mask=mask)
    return excess


def _diverged(step: int, what: str) -> StageError:
    return StageError(
        ErrorCode.TRAINING_DIVERGED,
        f"Training diverged at step {step}: {what}.",
        details={"step": step},
    )


def train(
    params: torch.nn.ParameterDict,
    data: SceneData,
    options: SplatOptions,
    device: torch.device,
    *,
    backend: Backend = "auto",
    on_progress: ProgressFn = no_progress,
) -> TrainStats:
    """Optimise ``params`` in place on the scene's training frames.

    Args:
        params: the Gaussians (see :func:`gs_worker.model.create_params`), on ``device``; replaced
            entries (densification) are written back into this dict.
        data: the scene at its training size.
        options: iterations, SH schedule, strategy, loss weights, cap.
        device: where training runs.
        backend: the rasterizer (``auto``: gsplat on CUDA, ours on the CPU).
        on_progress: called with the fraction of steps done and a message with the current PSNR;
            raising ``Cancelled`` from it stops training.

    Returns:
        Statistics of the run.

    Raises:
        StageError: ``TRAINING_DIVERGED`` on a non-finite loss or parameter; ``INVALID_OPTIONS`` for
            ``mcmc`` off CUDA.
    """
    strategy = make_strategy(options, device)
    optimizers = create_optimizers(params, data.scene_scale())
    scheduler = means_scheduler(optimizers, options.iterations)
    if strategy is not None:
        strategy.check_sanity(params, optimizers)
    if options.strategy == "default":
        state = strategy.initialize_state(scene_scale=data.scene_scale())
    else:
        state = strategy.initialize_state() if strategy is not None else {}

    images = torch.as_tensor(data.stack(data.train_frames))  # [F, H, W, 3] on the CPU
    viewmats, Ks = camera_tensors(data.poses(data.train_frames), data.camera, device)
    width, height = data.camera.width, data.camera.height
    generator = torch.Generator().manual_seed(options.seed)
    order = torch.randperm(len(images), generator=generator)
    stats = TrainStats(counts=[(0, len(params["means"]))])
    report_every = max(1, options.iterations // 1000)
    psnr_ema: float | None = None

    for step in range(options.iterations):
        slot = step % len(images)
        if slot == 0 and step > 0:
            order = torch.randperm(len(images), generator=generator)
        i = int(order[slot])
        target = images[i : i + 1].to(device, non_blocking=True)  # [1, H, W, 3]
        sh_degree = min(step // options.sh_degree_interval, options.sh_degree)
        # the photos are opaque: against a random background a transparent splat shows it and is penalised
        background = torch.rand(1, 3, generator=generator).to(device) if options.random_background else None

        rendered, _, info = render(
            params,
            viewmats[i : i + 1],
            Ks[i : i + 1],
            width,
            height,
            sh_degree=sh_degree,
            backgrounds=background,
            backend=backend,
        )
        if strategy is not None:
            strategy.step_pre_backward(params, optimizers, state, step, info)
        loss = photometric_loss(rendered, target, options.ssim_lambda)
        if options.strategy == "mcmc":
            loss = loss + MCMC_OPACITY_REG * torch.sigmoid(params["opacities"]).mean()
            loss = loss + MCMC_SCALE_REG * torch.exp(params["scales"]).mean()
        if not torch.isfinite(loss):
            raise _diverged(step, f"the loss became {float(loss.detach())}")
        loss.backward()

        for optimizer in optimizers.values():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        scheduler.step()

        count_before = len(params["means"])
        if options.strategy == "default":
            strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
            _enforce_cap(params, optimizers, state, options.max_gaussians)
        elif options.strategy == "mcmc":
            strategy.step_post_backward(params, optimizers, state, step, info, lr=scheduler.get_last_lr()[0])
        if len(params["means"]) != count_before:
            stats.counts.append((step + 1, len(params["means"])))
        if (step + 1) % FINITE_CHECK_EVERY == 0 and not all_finite(params):
            raise _diverged(step, "a Gaussian parameter became NaN or infinite")

        current = psnr(rendered, target)
        psnr_ema = current if psnr_ema is None or not math.isfinite(psnr_ema) else 0.9 * psnr_ema + 0.1 * current
        stats.iterations = step + 1
        stats.train_psnr = psnr_ema
        if (step + 1) % report_every == 0 or step + 1 == options.iterations:
            on_progress(
                (step + 1) / options.iterations,
                f"step {step + 1}/{options.iterations} · {len(params['means'])} Gaussians · PSNR {psnr_ema:.2f} dB",
            )

    if not all_finite(params):
        raise _diverged(stats.iterations, "a Gaussian parameter became NaN or infinite")
    logger.info(
        "trained %d steps: %d Gaussians, training PSNR %.2f dB",
        stats.iterations,
        len(params["means"]),
        stats.train_psnr,
    )
    return stats
