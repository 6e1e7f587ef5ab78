"""Image quality metrics on float images in ``[0, 1]``: PSNR and SSIM, numpy only.

Both training stages score held-out frames with these functions, so their numbers compare. Images
are ``[H, W]`` or ``[H, W, C]`` arrays; colour channels are scored separately and averaged.

SSIM follows Wang et al. (2004), "Image quality assessment: from error visibility to structural
similarity": an 11×11 Gaussian window with σ = 1.5, ``K1 = 0.01``, ``K2 = 0.03``, data range 1, the
mean taken over the "valid" positions where the window lies inside the image (as scikit-image's
``structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``).
"""

from __future__ import annotations

import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

#: PSNR reported for identical images (mean squared error 0), instead of infinity.
PSNR_MAX_DB = 100.0


def _as_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected an [H, W] or [H, W, C] image, got shape {a.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two images in ``[0, 1]``.

    Args:
        a: ``[H, W]`` or ``[H, W, C]`` image.
        b: an image of the same shape.

    Returns:
        ``-10·log10(MSE)``, capped at :data:`PSNR_MAX_DB` for identical images.

    Example:
        >>> round(psnr(np.zeros((4, 4)), np.full((4, 4), 0.1)), 6)
        20.0
    """
    a, b = _as_pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse <= 10.0 ** (-PSNR_MAX_DB / 10.0):
        return PSNR_MAX_DB
    return float(-10.0 * np.log10(mse))


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return np.asarray(k / k.sum())


def _filter_valid(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of ``img`` ``[H, W, C]`` with ``kernel`` ``[k]`` along H then W."""
    k = len(kernel)
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0)  # [H-k+1, W, C, k]
    img = rows @ kernel  # [H-k+1, W, C]
    cols = np.lib.stride_tricks.sliding_window_view(img, k, axis=1)  # [H-k+1, W-k+1, C, k]
    return np.asarray(cols @ kernel)  # [H-k+1, W-k+1, C]


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The local SSIM map between two images in ``[0, 1]``.

    The window is :data:`SSIM_WINDOW` pixels, shrunk to the largest odd size that fits an image
    smaller than that.

    Args:
        a: ``[H, W]`` or ``[H, W, C]`` image.
        b: an image of the same shape.

    Returns:
        ``[H - w + 1, W - w + 1, C]`` SSIM values (``C = 1`` for a 2-D input), ``w`` the window size.
    """
    a, b = _as_pair(a, b)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    size = min(SSIM_WINDOW, a.shape[0], a.shape[1])
    size -= 1 - size % 2  # odd
    kernel = _gaussian_kernel(size, SSIM_SIGMA)
    c1 = SSIM_K1**2
    c2 = SSIM_K2**2
    mu_a = _filter_valid(a, kernel)
    mu_b = _filter_valid(b, kernel)
    var_a = _filter_valid(a * a, kernel) - mu_a**2
    var_b = _filter_valid(b * b, kernel) - mu_b**2
    cov = _filter_valid(a * b, kernel) - mu_a * mu_b
    num = (2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return np.asarray(num / den)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity between two images in ``[0, 1]`` (1 for identical images).

    Args:
        a: ``[H, W]`` or ``[H, W, C]`` image.
        b: an image of the same shape.

    Returns:
        The mean of :func:`ssim_map` over positions and channels.

    Example:
        >>> img = np.linspace(0, 1, 400).reshape(20, 20)
        >>> ssim(img, img)
        1.0
    """
    return float(np.mean(ssim_map(a, b)))
