"""One entry point for rendering Gaussians: gsplat's CUDA rasterizer on a GPU, our compiled one on the CPU.

Backends: ``"gsplat"`` (CUDA), ``"cpu"`` (our compiled numba rasterizer, :mod:`gs_worker.rasterize_numba`) and
``"torch"`` (our pure-PyTorch rasterizer, :mod:`gs_worker.rasterize_cpu`: the readable twin of the compiled one and the
fallback where numba is not installed). The signature and the returned ``info`` mirror
``gsplat.rendering.rasterization`` (gsplat 1.5.3, ``packed=False``), so the training loop and gsplat's
``DefaultStrategy`` use any backend without knowing which one ran.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from gs_worker.rasterize_numba import numba_available

Backend = Literal["auto", "cpu", "torch", "gsplat"]
BACKENDS: tuple[str, ...] = ("auto", "cpu", "torch", "gsplat")


def resolve_backend(backend: str, device: torch.device) -> Literal["cpu", "torch", "gsplat"]:
    """Pick the concrete rasterizer for tensors on ``device``.

    Args:
        backend: ``"auto"`` (gsplat when the tensors are on CUDA; else the compiled CPU rasterizer, or the PyTorch one
            when numba is not installed), ``"cpu"`` (compiled, CPU tensors only), ``"torch"`` or ``"gsplat"``.
        device: the device the Gaussians live on.

    Returns:
        ``"gsplat"``, ``"cpu"`` or ``"torch"``.

    Raises:
        ValueError: for an unknown backend, ``"gsplat"`` with tensors that are not on CUDA, or ``"cpu"`` with CUDA
            tensors or without numba.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown rasterizer backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        if device.type == "cuda":
            return "gsplat"
        return "cpu" if numba_available() else "torch"
    if backend == "gsplat" and device.type != "cuda":
        raise ValueError("the gsplat rasterizer needs CUDA tensors; use backend='cpu' or 'auto' on the CPU")
    if backend == "cpu" and device.type != "cpu":
        raise ValueError("the compiled CPU rasterizer needs CPU tensors; use backend='auto' or 'gsplat' on CUDA")
    if backend == "cpu" and not numba_available():
        raise ValueError(
            "the compiled CPU rasterizer needs numba (pip install 'vid2scene[gs]'); or use backend='torch'"
        )
    return backend  # type: ignore[return-value]


def rasterize(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z), need not be normalised
    scales: Tensor,  # [N, 3] linear (already exp'd)
    opacities: Tensor,  # [N] in 0..1 (already sigmoid'd)
    colors: Tensor,  # [N, K, 3] SH coefficients when sh_degree is given, else [N, D] or [C, N, D]
    viewmats: Tensor,  # [C, 4, 4] cam_from_world, OpenCV convention
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    *,
    sh_degree: int | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    backgrounds: Tensor | None = None,  # [C, D]
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render Gaussians into C pinhole cameras, differentiably.

    Args:
        means: Gaussian centres in world coordinates. [N, 3]
        quats: rotations as quaternions (w, x, y, z); normalised inside. [N, 4]
        scales: per-axis standard deviations (linear, not log). [N, 3]
        opacities: opacities in 0..1 (after the sigmoid). [N]
        colors: SH coefficients [N, K, 3] with (sh_degree + 1)² ≤ K when ``sh_degree`` is given (the colour is
            ``max(SH(dir) + 0.5, 0)``, as in gsplat and INRIA); otherwise post-activation features [N, D] or [C, N, D].
        viewmats: ``cam_from_world`` transforms. [C, 4, 4]
        Ks: pinhole intrinsics. [C, 3, 3]
        width: image width in pixels.
        height: image height in pixels.
        sh_degree: SH degree to evaluate, or None for plain features.
        near_plane: Gaussians with camera depth at or below this are dropped.
        far_plane: Gaussians with camera depth at or above this are dropped.
        backgrounds: colour behind the Gaussians per camera. [C, D]
        backend: ``"auto"``, ``"cpu"``, ``"torch"`` or ``"gsplat"`` (see :func:`resolve_backend`).

    Returns:
        ``(render_colors [C, H, W, D], render_alphas [C, H, W, 1], info)``. ``info`` holds what gsplat's
        ``DefaultStrategy`` reads: ``means2d`` [C, N, 2] (a non-leaf tensor whose ``.grad`` the strategy retains),
        ``radii`` [C, N, 2] int32 (0 = not visible), ``width``, ``height``, ``n_cameras``, ``gaussian_ids`` (None:
        not packed), plus ``depths`` [C, N], ``conics`` [C, N, 3] and ``opacities`` [C, N].

    Example:
        >>> colors, alphas, info = rasterize(means, quats, scales, opacities, sh, viewmats, Ks, 64, 48, sh_degree=0)
    """
    concrete = resolve_backend(backend, means.device)
    if concrete == "gsplat":
        from gs_worker.rasterize_gsplat import rasterize_gsplat as render
    elif concrete == "cpu":
        from gs_worker.rasterize_numba import rasterize_numba as render
    else:
        from gs_worker.rasterize_cpu import rasterize_cpu as render
    return render(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        sh_degree=sh_degree,
        near_plane=near_plane,
        far_plane=far_plane,
        backgrounds=backgrounds,
    )
