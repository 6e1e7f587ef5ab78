"""The CUDA path: gsplat's fused rasterizer, the only place in the project that calls it."""

from __future__ import annotations

from typing import Any

from torch import Tensor


def rasterize_gsplat(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [N, K, 3] or [N, D] or [C, N, D]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    *,
    sh_degree: int | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    backgrounds: Tensor | None = None,  # [C, D]
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render with ``gsplat.rasterization`` (CUDA tensors only), unpacked so ``info`` matches the CPU rasterizer.

    Args:
        means: Gaussian centres. [N, 3]
        quats: quaternions (w, x, y, z). [N, 4]
        scales: linear scales. [N, 3]
        opacities: opacities in 0..1. [N]
        colors: SH coefficients [N, K, 3] (with ``sh_degree``) or features [N, D] / [C, N, D].
        viewmats: ``cam_from_world``. [C, 4, 4]
        Ks: intrinsics. [C, 3, 3]
        width: image width.
        height: image height.
        sh_degree: SH degree to evaluate, or None.
        near_plane: near clipping depth.
        far_plane: far clipping depth.
        backgrounds: background colours. [C, D]

    Returns:
        ``(render_colors [C, H, W, D], render_alphas [C, H, W, 1], info)`` exactly as gsplat returns them with
        ``packed=False`` (``info["gaussian_ids"]`` is None, ``info["radii"]`` is [C, N, 2]).
    """
    from gsplat.rendering import rasterization

    return rasterization(
        means=means,
        quats=quats,
        scales=scales,
        opacities=opacities,
        colors=colors,
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        near_plane=near_plane,
        far_plane=far_plane,
        sh_degree=sh_degree,
        packed=False,
        backgrounds=backgrounds,
        render_mode="RGB",
        rasterize_mode="classic",
    )
