"""A brute-force Gaussian renderer: every pixel against every Gaussian, one Gaussian at a time, in float64.

No tiles, no screen-space culling, no vectorised compositing tricks: it walks the depth-sorted Gaussians in a Python
loop and updates every pixel's transmittance exactly as gsplat's CUDA kernel does per pixel. It is slow on purpose and
exists to check :mod:`gs_worker.rasterize_cpu` (pixels and, through autograd, gradients) and to time it in
``bench/bench_rasterizer.py``. Its projection and SH code are written independently of the fast path. Its
:data:`SH_BASIS` is also the basis the exports rotate SH coefficients with (:mod:`gs_worker.scene_frame`).
"""

from __future__ import annotations

import torch
from torch import Tensor

ALPHA_THRESHOLD = 1.0 / 255.0

#: Real spherical-harmonic basis up to degree 3 on a unit direction (x, y, z), in the INRIA / gsplat order and signs;
#: plain arithmetic, so it takes numpy arrays as well as tensors (the degree-0 term needs a tensor).
SH_BASIS = (
    lambda x, y, z: 0.28209479177387814 * torch.ones_like(x),
    lambda x, y, z: -0.4886025119029199 * y,
    lambda x, y, z: 0.4886025119029199 * z,
    lambda x, y, z: -0.4886025119029199 * x,
    lambda x, y, z: 1.0925484305920792 * x * y,
    lambda x, y, z: -1.0925484305920792 * y * z,
    lambda x, y, z: 0.31539156525252005 * (3 * z * z - 1),
    lambda x, y, z: -1.0925484305920792 * x * z,
    lambda x, y, z: 0.5462742152960396 * (x * x - y * y),
    lambda x, y, z: -0.5900435899266435 * y * (3 * x * x - y * y),
    lambda x, y, z: 2.890611442640554 * x * y * z,
    lambda x, y, z: -0.4570457994644658 * y * (5 * z * z - 1),
    lambda x, y, z: 0.3731763325901154 * z * (5 * z * z - 3),
    lambda x, y, z: -0.4570457994644658 * x * (5 * z * z - 1),
    lambda x, y, z: 1.445305721320277 * z * (x * x - y * y),
    lambda x, y, z: -0.5900435899266435 * x * (x * x - 3 * y * y),
)


def _rotation(quats: Tensor) -> Tensor:
    """``(w² − v·v) I + 2 v vᵀ + 2 w [v]×`` for unit quaternions (w, v). [N, 4] -> [N, 3, 3]"""
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, v = q[:, 0], q[:, 1:]
    cross = torch.zeros(len(q), 3, 3, dtype=q.dtype)
    cross[:, 0, 1], cross[:, 0, 2], cross[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    cross = cross - cross.transpose(1, 2)
    eye = torch.eye(3, dtype=q.dtype)
    return (
        (w * w - (v * v).sum(-1))[:, None, None] * eye
        + 2 * v[:, :, None] * v[:, None, :]
        + 2 * w[:, None, None] * cross
    )


def _sh_color(degree: int, direction: Tensor, coeffs: Tensor) -> Tensor:
    """``max(Σ_k Y_k(dir)·c_k + 0.5, 0)`` for one camera. direction [N, 3], coeffs [N, K, 3] -> [N, 3]"""
    unit = direction / direction.norm(dim=-1, keepdim=True)
    x, y, z = unit.unbind(-1)
    terms = (SH_BASIS[k](x, y, z)[:, None] * coeffs[:, k] for k in range((degree + 1) ** 2))
    value = sum(terms, torch.zeros_like(coeffs[:, 0]))
    return torch.clamp_min(value + 0.5, 0.0)


def render_reference(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [N, K, 3] or [N, D]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    *,
    sh_degree: int | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    backgrounds: Tensor | None = None,  # [C, D]
) -> tuple[Tensor, Tensor]:
    """Render like ``rasterize`` (same model, same arguments), slowly and in the inputs' dtype (use float64).

    Args:
        means: centres. [N, 3]
        quats: quaternions (w, x, y, z). [N, 4]
        scales: linear scales. [N, 3]
        opacities: opacities in 0..1. [N]
        colors: SH coefficients [N, K, 3] with ``sh_degree``, else features [N, D].
        viewmats: ``cam_from_world``. [C, 4, 4]
        Ks: intrinsics. [C, 3, 3]
        width: image width.
        height: image height.
        sh_degree: SH degree (0..3) or None.
        near_plane: near clipping depth.
        far_plane: far clipping depth.
        backgrounds: background colours. [C, D]

    Returns:
        ``(render_colors [C, H, W, D], render_alphas [C, H, W, 1])``.
    """
    dtype = means.dtype
    rot = _rotation(quats)
    covars = rot @ torch.diag_embed(scales * scales) @ rot.transpose(1, 2)  # [N, 3, 3]
    pixel_y, pixel_x = torch.meshgrid(
        torch.arange(height, dtype=dtype) + 0.5, torch.arange(width, dtype=dtype) + 0.5, indexing="ij"
    )  # [H, W]
    images, alphas = [], []
    for cam in range(viewmats.shape[0]):
        rot_cam, t_cam, K = viewmats[cam, :3, :3], viewmats[cam, :3, 3], Ks[cam]
        points = means @ rot_cam.T + t_cam  # [N, 3]
        covars_cam = rot_cam @ covars @ rot_cam.T  # [N, 3, 3]
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        depth_ok = (points[:, 2] > near_plane) & (points[:, 2] < far_plane)
        z = torch.where(depth_ok, points[:, 2], torch.ones_like(points[:, 2]))
        # The Jacobian is taken at the centre clamped to 1.3× the field of view (gsplat / INRIA model).
        u = (points[:, 0] / z).clamp(-(cx / fx + 0.15 * width / fx), (width - cx) / fx + 0.15 * width / fx)
        v = (points[:, 1] / z).clamp(-(cy / fy + 0.15 * height / fy), (height - cy) / fy + 0.15 * height / fy)
        J = torch.zeros(len(means), 2, 3, dtype=dtype)
        J[:, 0, 0], J[:, 0, 2] = fx / z, -fx * u / z
        J[:, 1, 1], J[:, 1, 2] = fy / z, -fy * v / z
        cov2d = J @ covars_cam @ J.transpose(1, 2) + 0.3 * torch.eye(2, dtype=dtype)  # [N, 2, 2]
        det = torch.linalg.det(cov2d)
        usable = depth_ok & (det > 0) & (opacities >= ALPHA_THRESHOLD)
        centre = torch.stack([fx * points[:, 0] / z + cx, fy * points[:, 1] / z + cy], dim=-1)  # [N, 2]
        if sh_degree is None:
            feature = colors
        else:
            cam_position = -rot_cam.T @ t_cam
            feature = _sh_color(sh_degree, means - cam_position, colors)
        color = torch.zeros(height, width, feature.shape[-1], dtype=dtype)
        trans = torch.ones(height, width, dtype=dtype)
        finished = torch.zeros(height, width, dtype=torch.bool)
        order = torch.nonzero(usable).squeeze(1)
        order = order[torch.argsort(points[order, 2].detach(), stable=True)]
        for g in order.tolist():
            precision = torch.linalg.inv(cov2d[g])
            dx, dy = centre[g, 0] - pixel_x, centre[g, 1] - pixel_y
            sigma = 0.5 * (precision[0, 0] * dx * dx + precision[1, 1] * dy * dy) + precision[0, 1] * dx * dy
            alpha = torch.clamp_max(opacities[g] * torch.exp(-sigma), 0.999)
            skip = (sigma < 0) | (alpha < ALPHA_THRESHOLD) | finished
            after = trans * (1 - alpha)
            ends = ~skip & (after <= 1e-4)
            use = ~skip & ~ends
            color = color + torch.where(use, alpha * trans, torch.zeros_like(trans))[..., None] * feature[g]
            trans = torch.where(use, after, trans)
            finished = finished | ends
        if backgrounds is not None:
            color = color + trans[..., None] * backgrounds[cam]
        images.append(color)
        alphas.append(1 - trans[..., None])
    return torch.stack(images), torch.stack(alphas)
