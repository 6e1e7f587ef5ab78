"""The photometric training loss: ``(1 − λ)·L1 + λ·(1 − SSIM)``, as in 3DGS and gsplat's trainer.

The differentiable SSIM uses the same Gaussian window and constants as
:func:`shared.image_metrics.ssim` (over "valid" positions), so the value trained on is the value
reported.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional

from shared.image_metrics import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW


def _window_1d(size: int, sigma: float, like: Tensor) -> Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()  # [k]


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """Mean SSIM of two batches of images in ``[0, 1]``, differentiable.

    The Gaussian window is separable: the five local means (of x, y, x², y², xy) are one stacked pass of
    a vertical then a horizontal 1-D convolution — 2k instead of k² multiplications a pixel.

    Args:
        a: ``[B, H, W, C]`` images.
        b: ``[B, H, W, C]`` images.

    Returns:
        A scalar tensor; equals :func:`shared.image_metrics.ssim` for ``B = 1``.
    """
    x = a.permute(0, 3, 1, 2)  # [B, C, H, W]
    y = b.permute(0, 3, 1, 2).to(x.dtype)
    channels = x.shape[1]
    size = min(SSIM_WINDOW, x.shape[2], x.shape[3])
    size -= 1 - size % 2
    g = _window_1d(size, SSIM_SIGMA, x)
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # [B, 5C, H, W]
    n = stacked.shape[1]
    blurred = functional.conv2d(stacked, g.view(1, 1, size, 1).expand(n, 1, size, 1), groups=n)
    blurred = functional.conv2d(blurred, g.view(1, 1, 1, size).expand(n, 1, 1, size), groups=n)
    mu_x, mu_y, xx, yy, xy = blurred.split(channels, dim=1)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.mean()


def photometric_loss(rendered: Tensor, target: Tensor, ssim_lambda: float) -> Tensor:
    """``(1 − λ)·L1 + λ·(1 − SSIM)`` between ``[B, H, W, 3]`` batches."""
    l1 = torch.abs(rendered - target).mean()
    if ssim_lambda == 0:
        return l1
    return (1.0 - ssim_lambda) * l1 + ssim_lambda * (1.0 - ssim(rendered, target))


def psnr(rendered: Tensor, target: Tensor) -> float:
    """PSNR in dB of a rendered batch against its targets (for progress messages)."""
    mse = float(torch.mean((rendered.detach() - target) ** 2))
    return float(-10.0 * torch.log10(torch.tensor(max(mse, 1e-10))))
