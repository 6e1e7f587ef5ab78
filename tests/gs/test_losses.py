"""The training loss (gs_worker.losses) agrees with the reported metrics (shared.image_metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_worker.losses import photometric_loss, psnr, ssim
from shared import image_metrics


def test_the_differentiable_ssim_equals_the_reported_ssim() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((30, 41, 3))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    value = ssim(torch.tensor(a)[None], torch.tensor(b)[None])
    assert float(value) == pytest.approx(image_metrics.ssim(a, b), rel=1e-9)


def test_the_training_psnr_equals_the_reported_psnr() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random((8, 9, 3)), rng.random((8, 9, 3))
    assert psnr(torch.tensor(a)[None], torch.tensor(b)[None]) == pytest.approx(image_metrics.psnr(a, b), rel=1e-6)


def test_the_loss_is_zero_for_a_perfect_rendering_and_pulls_a_wrong_one_towards_the_target() -> None:
    target = torch.rand(1, 20, 20, 3, generator=torch.Generator().manual_seed(0))
    assert float(photometric_loss(target, target, 0.2)) == pytest.approx(0.0, abs=1e-6)
    rendered = torch.zeros_like(target, requires_grad=True)
    photometric_loss(rendered, target, 0.2).backward()
    grad = rendered.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert float((grad * (target - rendered.detach())).sum()) < 0  # descent moves towards the target
