"""A tiled, differentiable Gaussian rasterizer in plain PyTorch, for machines without CUDA.

It follows gsplat 1.5.3's classic 3DGS model so that the two backends are interchangeable:

- EWA projection: ``Σ2d = J W Σ Wᵀ Jᵀ + 0.3·I`` with the Jacobian's x/y clamped to 1.3× the field of view,
  radii ``ceil(min(3.33, sqrt(2·ln(255·opacity)))·sqrt(Σ2d diagonal))`` (gsplat's opacity-aware bound), dropped
  when the depth is outside (near, far), the determinant is not positive, the opacity is below 1/255 or the box
  misses the image;
- SH colours up to degree 3 with gsplat's constants, ``max(SH(dir) + 0.5, 0)``;
- front-to-back compositing at pixel centres ``(x + 0.5, y + 0.5)`` with ``alpha = min(0.999, o·exp(-σ))``,
  Gaussians with ``alpha < 1/255`` skipped (gsplat's ``σ < 0`` skip cannot trigger: the conics are positive
  definite), and a pixel finished (exclusive) at the first Gaussian that would take its transmittance to 1e-4 or
  below.

The image is cut into 16×16 tiles; each Gaussian is listed in the tiles its radius box overlaps, each tile's list is
sorted by depth, and tiles of similar list length are composited together as one padded tensor
``[tiles, pixels, gaussians]`` whose size is bounded (``max_chunk_elements``); long lists are walked in segments that
carry the transmittance, so memory stays bounded for any scene. Autograd supplies the backward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.nn.functional import normalize

TILE_SIZE = 16
EPS2D = 0.3
ALPHA_THRESHOLD = 1.0 / 255.0
ALPHA_MAX = 0.999
TRANSMITTANCE_MIN = 1e-4
MAX_EXTEND = 3.33
# Elements of one [tiles, pixels, gaussians] block (about a dozen such float tensors are kept for backward).
DEFAULT_CHUNK_ELEMENTS = 1 << 21
# Longest depth-sorted run of Gaussians composited in one step; longer tile lists are walked in segments.
MAX_SEGMENT = 1024

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


@dataclass(frozen=True)
class Projection:
    """Gaussians projected into C cameras (index [camera, gaussian])."""

    means2d: Tensor  # [C, N, 2] pixel coordinates of the centres
    covars2d: Tensor  # [C, N, 2, 2] image-space covariances, 0.3·I dilation included
    conics: Tensor  # [C, N, 3] inverse covariance (a, b, c) of [[a, b], [b, c]]
    depths: Tensor  # [C, N] camera-space z
    radii: Tensor  # [C, N, 2] int32 half-extents of the screen box; 0 where the Gaussian is not drawn


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices from quaternions.

    Args:
        quats: quaternions (w, x, y, z), normalised here. [..., 4]

    Returns:
        Rotation matrices. [..., 3, 3]
    """
    w, x, y, z = normalize(quats, p=2, dim=-1).unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z),
        2 * (x * y - w * z),
        2 * (x * z + w * y),
        2 * (x * y + w * z),
        1 - 2 * (x * x + z * z),
        2 * (y * z - w * x),
        2 * (x * z - w * y),
        2 * (y * z + w * x),
        1 - 2 * (x * x + y * y),
    )
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def covariance_from_quat_scale(quats: Tensor, scales: Tensor) -> Tensor:
    """3D covariances ``R S Sᵀ Rᵀ``.

    Args:
        quats: quaternions (w, x, y, z). [N, 4]
        scales: linear scales. [N, 3]

    Returns:
        Covariances. [N, 3, 3]
    """
    M = quat_to_rotmat(quats) * scales[..., None, :]  # [N, 3, 3]
    return M @ M.transpose(-1, -2)


def project_gaussians(
    means: Tensor,  # [N, 3]
    covars: Tensor,  # [N, 3, 3]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    *,
    opacities: Tensor | None = None,  # [N]
    eps2d: float = EPS2D,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
) -> Projection:
    """EWA-project 3D Gaussians into pinhole cameras, as gsplat's fused projection does.

    Args:
        means: world-space centres. [N, 3]
        covars: world-space covariances. [N, 3, 3]
        viewmats: ``cam_from_world``. [C, 4, 4]
        Ks: intrinsics. [C, 3, 3]
        width: image width.
        height: image height.
        opacities: when given, the radius uses gsplat's opacity-aware bound and Gaussians below 1/255 get radius
            0 (what ``gsplat.rasterization`` does); when None, the plain 3.33σ box of ``_fully_fused_projection``.
        eps2d: low-pass dilation added to the 2D covariance diagonal.
        near_plane: depth at or below which a Gaussian is dropped.
        far_plane: depth at or above which a Gaussian is dropped.

    Returns:
        The :class:`Projection`; values of dropped Gaussians are finite but meaningless (radius 0).
    """
    R = viewmats[:, :3, :3]  # [C, 3, 3]
    t = viewmats[:, :3, 3]  # [C, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C, N, 3]
    covars_c = R[:, None] @ covars[None] @ R[:, None].transpose(-1, -2)  # [C, N, 3, 3]

    x, y, z = means_c.unbind(-1)  # [C, N]
    in_depth = (z > near_plane) & (z < far_plane)
    z_safe = torch.where(in_depth, z, torch.ones_like(z))  # keeps dropped Gaussians' gradients finite
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    u = torch.minimum(torch.maximum(x / z_safe, -(cx / fx + 0.3 * tan_fovx)), (width - cx) / fx + 0.3 * tan_fovx)
    v = torch.minimum(torch.maximum(y / z_safe, -(cy / fy + 0.3 * tan_fovy)), (height - cy) / fy + 0.3 * tan_fovy)
    zeros = torch.zeros_like(z)
    J = torch.stack([fx / z_safe, zeros, -fx * u / z_safe, zeros, fy / z_safe, -fy * v / z_safe], dim=-1)
    J = J.reshape(*z.shape, 2, 3)  # [C, N, 2, 3]
    covars2d = J @ covars_c @ J.transpose(-1, -2)  # [C, N, 2, 2]
    covars2d = covars2d + eps2d * torch.eye(2, dtype=means.dtype, device=means.device)
    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)  # [C, N, 2]

    a, b, c = covars2d[..., 0, 0], 0.5 * (covars2d[..., 0, 1] + covars2d[..., 1, 0]), covars2d[..., 1, 1]
    det_raw = a * c - b * b
    det = det_raw.clamp(min=1e-10)
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)  # [C, N, 3]

    with torch.no_grad():
        visible = in_depth & (det_raw > 0)
        extend = torch.full_like(z, MAX_EXTEND)
        if opacities is not None:
            opacity = opacities.detach()[None].expand_as(z)
            visible &= opacity >= ALPHA_THRESHOLD
            extend = torch.clamp(
                torch.sqrt(2.0 * torch.log(opacity.clamp(min=ALPHA_THRESHOLD) / ALPHA_THRESHOLD)), max=MAX_EXTEND
            )
        radius = torch.ceil(extend[..., None] * torch.sqrt(torch.stack([a, c], dim=-1).clamp(min=0)))  # [C, N, 2]
        m = means2d.detach()
        visible &= (
            (m[..., 0] + radius[..., 0] > 0)
            & (m[..., 0] - radius[..., 0] < width)
            & (m[..., 1] + radius[..., 1] > 0)
            & (m[..., 1] - radius[..., 1] < height)
        )
        radii = torch.where(visible[..., None], radius, torch.zeros_like(radius)).to(torch.int32)
    return Projection(means2d=means2d, covars2d=covars2d, conics=conics, depths=z, radii=radii)


def evaluate_sh(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Sum real spherical harmonics up to ``degree`` (0-3) weighted by ``coeffs``.

    Args:
        degree: SH degree to evaluate, 0..3.
        dirs: view directions (normalised here). [..., 3]
        coeffs: coefficients with at least (degree + 1)² rows. [..., K, 3]

    Returns:
        The raw SH value (without gsplat's +0.5 offset). [..., 3]
    """
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be in 0..3, got {degree}")
    if coeffs.shape[-2] < (degree + 1) ** 2:
        raise ValueError(f"SH degree {degree} needs {(degree + 1) ** 2} coefficients, got {coeffs.shape[-2]}")
    out = SH_C0 * coeffs[..., 0, :]
    if degree == 0:
        return out
    x, y, z = (d[..., None] for d in normalize(dirs, p=2, dim=-1).unbind(-1))
    out = out - SH_C1 * y * coeffs[..., 1, :] + SH_C1 * z * coeffs[..., 2, :] - SH_C1 * x * coeffs[..., 3, :]
    if degree == 1:
        return out
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    out = (
        out
        + SH_C2[0] * xy * coeffs[..., 4, :]
        + SH_C2[1] * yz * coeffs[..., 5, :]
        + SH_C2[2] * (2 * zz - xx - yy) * coeffs[..., 6, :]
        + SH_C2[3] * xz * coeffs[..., 7, :]
        + SH_C2[4] * (xx - yy) * coeffs[..., 8, :]
    )
    if degree == 2:
        return out
    return (
        out
        + SH_C3[0] * y * (3 * xx - yy) * coeffs[..., 9, :]
        + SH_C3[1] * xy * z * coeffs[..., 10, :]
        + SH_C3[2] * y * (4 * zz - xx - yy) * coeffs[..., 11, :]
        + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * coeffs[..., 12, :]
        + SH_C3[4] * x * (4 * zz - xx - yy) * coeffs[..., 13, :]
        + SH_C3[5] * z * (xx - yy) * coeffs[..., 14, :]
        + SH_C3[6] * x * (xx - 3 * yy) * coeffs[..., 15, :]
    )


def colors_per_camera(means: Tensor, colors: Tensor, viewmats: Tensor, sh_degree: int | None) -> Tensor:
    """Per-camera Gaussian colours: SH evaluated towards each camera, or the given features broadcast.

    Args:
        means: Gaussian centres. [N, 3]
        colors: SH coefficients [N, K, 3] when ``sh_degree`` is given, else features [N, D] or [C, N, D].
        viewmats: ``cam_from_world``. [C, 4, 4]
        sh_degree: SH degree or None.

    Returns:
        Colours. [C, N, D]
    """
    n_cameras = viewmats.shape[0]
    if sh_degree is None:
        if colors.dim() == 2:
            return colors[None].expand(n_cameras, -1, -1)
        return colors
    cam_positions = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3] world position of each camera
    dirs = means[None] - cam_positions[:, None]  # [C, N, 3]
    coeffs = colors[None].expand(n_cameras, -1, -1, -1)  # [C, N, K, 3]
    return torch.clamp_min(evaluate_sh(sh_degree, dirs, coeffs) + 0.5, 0.0)


def _tile_intersections(
    means2d: Tensor, radii: Tensor, depths: Tensor, tiles_x: int, tiles_y: int, tile_size: int
) -> tuple[Tensor, Tensor]:
    """List (tile, Gaussian) pairs for every tile a Gaussian's box touches, sorted by tile then depth.

    Args:
        means2d: centres, detached. [N, 2]
        radii: integer half-extents; 0 = not drawn. [N, 2]
        depths: camera depths. [N]
        tiles_x: tiles per row.
        tiles_y: tiles per column.
        tile_size: tile edge in pixels.

    Returns:
        ``(tile_ids [M], gaussian_ids [M])``, sorted by tile id, depth-ordered within a tile.
    """
    visible = torch.nonzero((radii > 0).all(dim=-1)).squeeze(1)
    visible = visible[torch.argsort(depths[visible], stable=True)]  # front to back
    m, r = means2d[visible], radii[visible].to(means2d.dtype)
    lo = torch.floor((m - r) / tile_size).long()
    hi = torch.ceil((m + r) / tile_size).long()
    lo[:, 0].clamp_(0, tiles_x)
    hi[:, 0].clamp_(0, tiles_x)
    lo[:, 1].clamp_(0, tiles_y)
    hi[:, 1].clamp_(0, tiles_y)
    span = hi - lo  # [V, 2]
    counts = span[:, 0] * span[:, 1]
    owner = torch.repeat_interleave(torch.arange(len(visible), device=counts.device), counts)  # [M] into visible
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(len(owner), device=counts.device) - first[owner]
    tx = lo[owner, 0] + k % span[owner, 0]
    ty = lo[owner, 1] + k // span[owner, 0]
    tile_ids = ty * tiles_x + tx
    order = torch.argsort(tile_ids, stable=True)  # keeps the depth order inside each tile
    return tile_ids[order], visible[owner[order]]


def _plan_chunks(lengths: Tensor, pixels: int, max_elements: int) -> list[tuple[int, int, int]]:
    """Group tiles (sorted by list length) into blocks whose padded size stays under ``max_elements``.

    Args:
        lengths: per-tile list lengths, ascending. [T]
        pixels: pixels per tile.
        max_elements: bound on tiles × pixels × segment length.

    Returns:
        ``(start, stop, segment)`` per block: tiles ``start:stop`` walked ``segment`` Gaussians at a time.
    """
    plan: list[tuple[int, int, int]] = []
    values = lengths.tolist()
    start = 0
    while start < len(values):
        stop = start + 1
        while stop < len(values) and (stop + 1 - start) * pixels * min(values[stop], MAX_SEGMENT) <= max_elements:
            stop += 1
        longest = values[stop - 1]
        segment = max(1, min(longest, MAX_SEGMENT, max_elements // (pixels * (stop - start))))
        plan.append((start, stop, segment))
        start = stop
    return plan


def _composite_block(
    gaussian_ids: Tensor,  # [B, L] index into the camera's Gaussians, -1 = padding
    origin_x: Tensor,  # [B] x of each tile's top-left corner
    origin_y: Tensor,  # [B] y of each tile's top-left corner
    pixel_terms: Tensor,  # [P, 6] (u², uv, v², u, v, 1) of the pixel centres relative to the tile corner
    means2d: Tensor,  # [N, 2]
    conics: Tensor,  # [N, 3]
    opacities: Tensor,  # [N] (the ones listed are ≥ 1/255)
    colors: Tensor,  # [N, D]
    segment: int,
) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing of depth-sorted Gaussian lists for a block of tiles.

    ``σ − ln(o)`` of every (pixel, Gaussian) pair is one matrix product: the Mahalanobis form is expanded into six
    per-Gaussian coefficients (relative to the tile corner, which keeps the expansion well conditioned) against the
    six pixel terms. Conics are positive definite by construction, so gsplat's ``σ < 0`` skip never applies.

    Args:
        gaussian_ids: per tile, its Gaussians front to back, padded with -1. [B, L]
        origin_x: x of each tile's top-left corner. [B]
        origin_y: y of each tile's top-left corner. [B]
        pixel_terms: ``(u², uv, v², u, v, 1)`` of the pixel centres relative to the tile corner. [P, 6]
        means2d: pixel-space centres. [N, 2]
        conics: inverse 2D covariances (a, b, c). [N, 3]
        opacities: opacities; the listed ones are ≥ 1/255. [N]
        colors: features. [N, D]
        segment: Gaussians composited per step; transmittance and the finished flag carry across steps.

    Returns:
        ``(color [B, P, D], transmittance [B, P])`` after the last Gaussian composited per pixel.
    """
    n_tiles, n_pixels = len(origin_x), pixel_terms.shape[0]
    dtype, device = means2d.dtype, means2d.device
    transmittance = torch.ones(n_tiles, n_pixels, dtype=dtype, device=device)
    done = torch.zeros(n_tiles, n_pixels, dtype=torch.bool, device=device)
    color = torch.zeros(n_tiles, n_pixels, colors.shape[-1], dtype=dtype, device=device)
    padding = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1e4], dtype=dtype, device=device)  # exp(-1e4) = 0
    for begin in range(0, gaussian_ids.shape[1], segment):
        ids = gaussian_ids[:, begin : begin + segment]  # [B, S]
        safe = ids.clamp(min=0)
        mx = means2d[safe, 0] - origin_x[:, None]  # [B, S]
        my = means2d[safe, 1] - origin_y[:, None]
        a, b, c = conics[safe].unbind(-1)
        coefficients = torch.stack(
            [
                0.5 * a,
                b,
                0.5 * c,
                -(a * mx + b * my),
                -(b * mx + c * my),
                0.5 * a * mx * mx + b * mx * my + 0.5 * c * my * my - torch.log(opacities[safe]),
            ],
            dim=-1,
        )  # [B, S, 6]
        coefficients = torch.where((ids >= 0)[..., None], coefficients, padding)
        alpha = torch.exp(-(pixel_terms @ coefficients.transpose(1, 2))).clamp_max(ALPHA_MAX)  # [B, P, S]
        alpha = alpha * (alpha.detach() >= ALPHA_THRESHOLD)  # masks by multiplication: cheaper backward than where
        through = torch.cumprod(1.0 - alpha, dim=-1)  # transmittance after each Gaussian of the segment
        before = torch.cat([torch.ones_like(through[..., :1]), through[..., :-1]], dim=-1)
        first = begin == 0
        with torch.no_grad():
            reached = (through if first else through * transmittance[..., None]) > TRANSMITTANCE_MIN
            composited = reached if first else reached & ~done[..., None]
            done = done | ~reached[..., -1]
        weights = alpha * (before * composited)
        if not first:
            weights = weights * transmittance[..., None]
        color = color + weights @ colors[safe]  # [B, P, D]
        transmittance = transmittance - weights.sum(dim=-1)
        if bool(done.all()):
            break
    return color, transmittance


def composite_image(
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
    max_chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[Tensor, Tensor]:
    """Rasterize projected Gaussians of one camera into an image, tile by tile.

    Args:
        means2d: pixel-space centres. [N, 2]
        conics: inverse 2D covariances (a, b, c). [N, 3]
        opacities: opacities in 0..1. [N]
        colors: per-Gaussian features. [N, D]
        depths: camera depths (sort key). [N]
        radii: screen half-extents; 0 = skip. [N, 2]
        width: image width.
        height: image height.
        tile_size: tile edge in pixels.
        max_chunk_elements: bound on the padded [tiles, pixels, gaussians] block composited at once.

    Returns:
        ``(color [H, W, D], transmittance [H, W])``.
    """
    dtype, device, n_channels = means2d.dtype, means2d.device, colors.shape[-1]
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    n_tiles, n_pixels = tiles_x * tiles_y, tile_size * tile_size
    tile_ids, gaussian_ids = _tile_intersections(means2d.detach(), radii, depths.detach(), tiles_x, tiles_y, tile_size)

    counts = torch.bincount(tile_ids, minlength=n_tiles)  # [T]
    offsets = torch.cumsum(counts, 0) - counts
    active = torch.nonzero(counts).squeeze(1)
    active = active[torch.argsort(counts[active], stable=True)]
    local_y, local_x = torch.meshgrid(
        torch.arange(tile_size, device=device), torch.arange(tile_size, device=device), indexing="ij"
    )
    u, v = local_x.reshape(-1).to(dtype) + 0.5, local_y.reshape(-1).to(dtype) + 0.5  # [P]
    pixel_terms = torch.stack([u * u, u * v, v * v, u, v, torch.ones_like(u)], dim=-1)  # [P, 6]

    color_tiles = torch.zeros(n_tiles, n_pixels, n_channels, dtype=dtype, device=device)
    trans_tiles = torch.ones(n_tiles, n_pixels, dtype=dtype, device=device)
    done_ids, done_color, done_trans = [], [], []
    for start, stop, segment in _plan_chunks(counts[active], n_pixels, max_chunk_elements):
        tiles = active[start:stop]  # [B]
        longest = int(counts[tiles].max())
        slot = torch.arange(longest, device=device)
        in_list = slot[None] < counts[tiles][:, None]  # [B, L]
        flat = (offsets[tiles][:, None] + slot[None]).clamp(max=max(len(gaussian_ids) - 1, 0))
        ids = torch.where(in_list, gaussian_ids[flat], torch.full_like(flat, -1))
        origin_x = (tiles % tiles_x).to(dtype) * tile_size
        origin_y = (tiles // tiles_x).to(dtype) * tile_size
        color, trans = _composite_block(
            ids, origin_x, origin_y, pixel_terms, means2d, conics, opacities, colors, segment
        )
        done_ids.append(tiles)
        done_color.append(color)
        done_trans.append(trans)
    if done_ids:
        ids = torch.cat(done_ids)
        color_tiles = color_tiles.index_copy(0, ids, torch.cat(done_color))
        trans_tiles = trans_tiles.index_copy(0, ids, torch.cat(done_trans))
    else:  # nothing drawn: keep the (empty) image in the graph so that backward() works, as with gsplat
        color_tiles = color_tiles + 0.0 * (means2d.sum() + opacities.sum() + colors.sum())

    def untile(x: Tensor) -> Tensor:
        x = x.reshape(tiles_y, tiles_x, tile_size, tile_size, -1).permute(0, 2, 1, 3, 4)
        return x.reshape(tiles_y * tile_size, tiles_x * tile_size, -1)[:height, :width]

    return untile(color_tiles), untile(trans_tiles)[..., 0]


#: Composites one camera: ``(means2d, conics, opacities, colors, depths, radii, width, height) -> (color [H, W, D],
#: transmittance [H, W])``, differentiable in the first four.
Compositor = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int, int], tuple[Tensor, Tensor]]


def rasterize_projected(
    composite: Compositor,
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
    sh_degree: int | None,
    near_plane: float,
    far_plane: float,
    backgrounds: Tensor | None,  # [C, D]
    tile_size: int,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Project and colour in PyTorch autograd, composite each camera with ``composite``, and build gsplat's ``info``.

    The CPU backends share this: only the compositing step differs (pure PyTorch or compiled).

    Args:
        composite: the compositing step of one camera (see :data:`Compositor`).
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
        tile_size: tile edge in pixels (reported in ``info``).

    Returns:
        ``(render_colors [C, H, W, D], render_alphas [C, H, W, 1], info)`` (see ``rasterize``).
    """
    n_cameras = viewmats.shape[0]
    projection = project_gaussians(
        means,
        covariance_from_quat_scale(quats, scales),
        viewmats,
        Ks,
        width,
        height,
        opacities=opacities,
        near_plane=near_plane,
        far_plane=far_plane,
    )
    features = colors_per_camera(means, colors, viewmats, sh_degree)  # [C, N, D]
    images, alphas = [], []
    for cam in range(n_cameras):
        color, transmittance = composite(
            projection.means2d[cam],
            projection.conics[cam],
            opacities,
            features[cam],
            projection.depths[cam],
            projection.radii[cam],
            width,
            height,
        )
        if backgrounds is not None:
            color = color + transmittance[..., None] * backgrounds[cam]
        images.append(color)
        alphas.append(1.0 - transmittance[..., None])
    info: dict[str, Any] = {
        "batch_ids": None,
        "camera_ids": None,
        "gaussian_ids": None,
        "radii": projection.radii,
        "means2d": projection.means2d,
        "depths": projection.depths,
        "conics": projection.conics,
        "opacities": opacities[None].expand(n_cameras, -1),
        "width": width,
        "height": height,
        "n_cameras": n_cameras,
        "n_batches": 1,
        "tile_size": tile_size,
        "tile_width": math.ceil(width / tile_size),
        "tile_height": math.ceil(height / tile_size),
    }
    return torch.stack(images), torch.stack(alphas), info


def rasterize_cpu(
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
    max_chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render with the pure-PyTorch rasterizer (``backend="torch"``); same inputs, outputs and ``info`` as
    :func:`gs_worker.rasterize.rasterize`.

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
        max_chunk_elements: memory bound, in elements of the largest padded block.

    Returns:
        ``(render_colors [C, H, W, D], render_alphas [C, H, W, 1], info)`` (see ``rasterize``).
    """
    return rasterize_projected(
        partial(composite_image, tile_size=tile_size, max_chunk_elements=max_chunk_elements),
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
