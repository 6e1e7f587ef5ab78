"""PSNR and SSIM on float images (shared.image_metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.image_metrics import SSIM_K1, SSIM_K2, psnr, ssim, ssim_map


def _brute_force_ssim(a: np.ndarray, b: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """SSIM by the textbook definition, one window at a time (Wang et al. 2004)."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    g /= g.sum()
    values = []
    for c in range(a.shape[2]):
        for i in range(a.shape[0] - size + 1):
            for j in range(a.shape[1] - size + 1):
                pa, pb = a[i : i + size, j : j + size, c], b[i : i + size, j : j + size, c]
                ma, mb = (g * pa).sum(), (g * pb).sum()
                va, vb = (g * (pa - ma) ** 2).sum(), (g * (pb - mb) ** 2).sum()
                cov = (g * (pa - ma) * (pb - mb)).sum()
                c1, c2 = SSIM_K1**2, SSIM_K2**2
                values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_psnr_of_a_known_error_is_minus_ten_log_mse() -> None:
    a = np.zeros((8, 8, 3))
    assert psnr(a, a + 0.01) == pytest.approx(40.0)
    assert psnr(a, a + 0.1) == pytest.approx(20.0)


def test_psnr_of_identical_images_is_finite_and_high() -> None:
    a = np.random.default_rng(0).random((5, 7, 3))
    assert psnr(a, a) == 100.0


def test_ssim_matches_the_windowed_definition_computed_one_window_at_a_time() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((20, 23, 3))
    b = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1)
    assert ssim(a, b) == pytest.approx(_brute_force_ssim(a, b), rel=1e-9)


def test_ssim_is_one_for_identical_images_and_drops_with_noise() -> None:
    rng = np.random.default_rng(2)
    a = rng.random((32, 32, 3))
    slightly = np.clip(a + 0.02 * rng.standard_normal(a.shape), 0, 1)
    badly = np.clip(a + 0.3 * rng.standard_normal(a.shape), 0, 1)
    assert ssim(a, a) == pytest.approx(1.0)
    assert 1.0 > ssim(a, slightly) > ssim(a, badly) > 0.0


def test_ssim_shrinks_its_window_for_images_smaller_than_it() -> None:
    a = np.random.default_rng(3).random((6, 9))
    assert ssim_map(a, a).shape == (2, 5, 1)  # a 5×5 window
    assert ssim(a, a) == pytest.approx(1.0)


def test_metrics_refuse_images_of_different_shapes() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
