"""The compiled CPU rasterizer (``backend="cpu"``): numba kernels for compositing, PyTorch autograd around them.

Projection (EWA, radii, conics) and SH colours stay in PyTorch (:func:`gs_worker.rasterize_cpu.rasterize_projected`),
so gradients reach means, quats, scales, opacities and SH through autograd; the compositing step of each camera is one
:class:`torch.autograd.Function` whose forward and hand-written backward are the kernels of
:mod:`gs_worker.rasterize_numba_kernels` (same model as the PyTorch rasterizer; memory O(N + pixels + tile entries)).

numba is an optional dependency (the ``gs`` extra installs it) and is imported only when this rasterizer first runs.
The kernels compile on first use (several seconds) and are cached on disk next to the package or, where that is
read-only, in ``NUMBA_CACHE_DIR``; :func:`warm_up_compiled_rasterizer` does that up front.
"""

from __future__ import annotations

import importlib.util
import math
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from gs_worker.rasterize_cpu import TILE_SIZE, rasterize_projected

#: What forward saves for backward: tile_start, entries, (means2d, conics, opacities, colors) as float64,
#: (width, height, tiles_x, tile_size), the final transmittance and each pixel's last entry.
_SavedState = tuple[
    np.ndarray,
    np.ndarray,
    tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tuple[int, int, int, int],
    np.ndarray,
    np.ndarray,
]


def numba_available() -> bool:
    """Whether numba is installed, i.e. whether the compiled rasterizer can run (without importing numba)."""
    return importlib.util.find_spec("numba") is not None


def _float64(tensor: Tensor) -> np.ndarray:
    """A C-contiguous float64 numpy copy (or view) of a CPU tensor, detached."""
    return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float64)


class _CompositeFunction(torch.autograd.Function):
    """Compositing of one camera: ``(means2d, conics, opacities, colors) -> (color [H, W, D], transmittance [H, W])``.

    The tile lists are built from detached depths and radii, which have no gradient (as in gsplat).
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        means2d: Tensor,  # [N, 2]
        conics: Tensor,  # [N, 3]
        opacities: Tensor,  # [N]
        colors: Tensor,  # [N, D]
        depths: Tensor,  # [N]
        radii: Tensor,  # [N, 2]
        width: int,
        height: int,
        tile_size: int,
    ) -> tuple[Tensor, Tensor]:
        from gs_worker import rasterize_numba_kernels as kernels

        tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
        arrays = (_float64(means2d), _float64(conics), _float64(opacities), _float64(colors))
        radii_np = np.ascontiguousarray(radii.detach().cpu().numpy(), dtype=np.int32)
        tile_start, entries = kernels.bin_gaussians(arrays[0], radii_np, _float64(depths), tiles_x, tiles_y, tile_size)
        color = np.empty((height, width, arrays[3].shape[1]))
        transmittance = np.empty((height, width))
        last = np.empty((height, width), np.int64)
        layout = (width, height, tiles_x, tile_size)
        with kernels.balanced_tiles():
            kernels.composite_forward(tile_start, entries, *arrays, *layout, color, transmittance, last)
        ctx.state = (tile_start, entries, arrays, layout, transmittance, last)  # type: ignore[attr-defined]
        ctx.dtypes = (means2d.dtype, conics.dtype, opacities.dtype, colors.dtype)  # type: ignore[attr-defined]
        dtype = colors.dtype
        return torch.from_numpy(color).to(dtype), torch.from_numpy(transmittance).to(dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_color: Tensor, grad_transmittance: Tensor) -> tuple[Tensor | None, ...]:
        from gs_worker import rasterize_numba_kernels as kernels

        state: _SavedState = ctx.state  # type: ignore[attr-defined]
        tile_start, entries, arrays, layout, transmittance, last = state
        n_gaussians, n_channels = arrays[3].shape
        rows = np.empty((len(entries), kernels.ROW_FIXED + n_channels))
        with kernels.balanced_tiles():
            kernels.composite_backward(
                tile_start,
                entries,
                *arrays,
                *layout,
                transmittance,
                last,
                _float64(grad_color),
                _float64(grad_transmittance),
                rows,
            )
        per_gaussian = torch.from_numpy(kernels.sum_rows_per_gaussian(entries, rows, n_gaussians))
        dtypes = ctx.dtypes  # type: ignore[attr-defined]
        return (
            per_gaussian[:, 0:2].to(dtypes[0]),
            per_gaussian[:, 2:5].to(dtypes[1]),
            per_gaussian[:, 5].to(dtypes[2]),
            per_gaussian[:, kernels.ROW_FIXED :].to(dtypes[3]),
            None,
            None,
            None,
            None,
            None,
        )


def composite_image_numba(
    means2d: Tensor,  # [N, 2]
    conics: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [N, D]
    depths: Tensor,  # [N]
    radii: Tensor,  # [N, 2]
    width: int,
    height: int,
    *,
    tile_size: int = TILE_SIZE,
) -> tuple[Tensor, Tensor]:
    """Rasterize projected Gaussians of one camera with the compiled kernels (differentiable in the first four).

    Args:
        means2d: pixel-space centres. [N, 2]
        conics: inverse 2D covariances (a, b, c). [N, 3]
        opacities: opacities in 0..1. [N]
        colors: per-Gaussian features. [N, D]
        depths: camera depths (sort key). [N]
        radii: screen half-extents; 0 = skip. [N, 2]
        width: image width.
        height: image height.
        tile_size: tile edge in pixels, at most 32.

    Returns:
        ``(color [H, W, D], transmittance [H, W])``, in the dtype of ``colors``.

    Raises:
        ValueError: for a tile size outside 1..32.
    """
    from gs_worker.rasterize_numba_kernels import MAX_TILE_SIZE

    if not 1 <= tile_size <= MAX_TILE_SIZE:
        raise ValueError(f"tile_size must be in 1..{MAX_TILE_SIZE}, got {tile_size}")
    return _CompositeFunction.apply(means2d, conics, opacities, colors, depths, radii, width, height, tile_size)


def rasterize_numba(
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
    tile_size: int = TILE_SIZE,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render with the compiled CPU rasterizer; same inputs, outputs and ``info`` as :func:`gs_worker.rasterize.rasterize`.

    Args:
        means: centres. [N, 3]
        quats: quaternions (w, x, y, z). [N, 4]
        scales: linear scales. [N, 3]
        opacities: opacities in 0..1. [N]
        colors: SH coefficients [N, K, 3] with ``sh_degree``, else features [N, D] or [C, N, D].
        viewmats: ``cam_from_world``. [C, 4, 4]
        Ks: intrinsics. [C, 3, 3]
        width: image width.
        height: image height.
        sh_degree: SH degree or None.
        near_plane: near clipping depth.
        far_plane: far clipping depth.
        backgrounds: background colours. [C, D]
        tile_size: tile edge in pixels.

    Returns:
        ``(render_colors [C, H, W, D], render_alphas [C, H, W, 1], info)`` (see ``rasterize``).
    """
    return rasterize_projected(
        partial(composite_image_numba, tile_size=tile_size),
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
        tile_size=tile_size,
    )


def compiled_rasterizer_ready() -> bool:
    """Whether the kernels are already compiled (or loaded from the disk cache) in this process."""
    if not numba_available():
        return False
    from gs_worker import rasterize_numba_kernels as kernels

    dispatchers = (kernels.bin_gaussians, kernels.composite_forward, kernels.composite_backward)
    return all(dispatcher.signatures for dispatcher in (*dispatchers, kernels.sum_rows_per_gaussian))


def warm_up_compiled_rasterizer() -> None:
    """Compile the kernels (or load them from numba's disk cache) by rendering and backpropagating a tiny scene.

    The first call on a machine takes several seconds; later processes load the cache in well under one.
    """
    means = torch.tensor([[0.0, 0.0, 2.0], [0.1, 0.0, 3.0]], requires_grad=True)
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    scales = torch.full((2, 3), 0.05)
    opacities = torch.tensor([0.5, 0.9])
    colors = torch.full((2, 1, 3), 0.5)
    Ks = torch.tensor([[[16.0, 0.0, 8.0], [0.0, 16.0, 8.0], [0.0, 0.0, 1.0]]])
    rendered, alphas, _ = rasterize_numba(
        means, quats, scales, opacities, colors, torch.eye(4)[None], Ks, 16, 16, sh_degree=0
    )
    (rendered.sum() + alphas.sum()).backward()
