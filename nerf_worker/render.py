"""Volume rendering of a :class:`~nerf_worker.model.TensorVM` along rays, and chunked image rendering.

Samples are spaced :attr:`TensorVM.step_size` apart from where each ray enters the scene box to where
it leaves it. Density is evaluated only at samples inside the box and the alpha mask, colour only
where a sample's compositing weight is above :data:`WEIGHT_THRESHOLD`. Light that passes through the
box picks up the model's background colour for the ray's direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nerf_worker.model import TensorVM
from nerf_worker.rays import image_rays, near_far
from shared.manifest import PinholeCamera

#: Samples whose compositing weight is below this skip the appearance field.
WEIGHT_THRESHOLD = 1e-4


@dataclass(frozen=True)
class RayOutput:
    """What :func:`render_rays` returns, per ray."""

    rgb: Tensor  # [N, 3] composited colour, background included
    depth: Tensor  # [N] expected distance along the ray; light that leaves the box counts at the exit
    opacity: Tensor  # [N] accumulated opacity inside the box


def render_rays(
    model: TensorVM,
    origins: Tensor,
    dirs: Tensor,
    *,
    min_near: float,
    jitter: bool = False,
    generator: torch.Generator | None = None,
    step: float | None = None,
) -> RayOutput:
    """Render rays through the field.

    Args:
        model: the radiance field.
        origins: ray origins.  # [N, 3]
        dirs: unit ray directions.  # [N, 3]
        min_near: closest distance sampled in front of the origin.
        jitter: shift each ray's samples by a random fraction of a step (training).
        generator: random source for the jitter.
        step: distance between samples; None: the model's training step (:attr:`TensorVM.step_size`).

    Returns:
        Colour, expected depth and opacity per ray.
    """
    n_rays = len(origins)
    step = model.step_size if step is None else step
    near, far = near_far(origins, dirs, model.aabb, min_near)
    far = torch.maximum(far, near)
    span = int(torch.ceil(((far - near) / step).max()).item()) if n_rays else 0
    diagonal = float((model.aabb[1] - model.aabb[0]).norm())
    n_samples = max(1, min(span + 1, math.ceil(diagonal / step) + 1))
    k = torch.arange(n_samples, device=origins.device, dtype=origins.dtype)[None]  # [1, S]
    offset = torch.rand(n_rays, 1, generator=generator).to(origins.device) if jitter else 0.5
    k = k + offset
    t = near[:, None] + step * k  # [N, S]
    points = origins[:, None] + t[..., None] * dirs[:, None]  # [N, S, 3]

    mask = t < far[:, None]
    mask[mask.clone()] = model.occupied(points[mask])
    sigma = torch.zeros_like(t)
    if mask.any():
        sigma[mask] = model.density(points[mask])
    alpha = 1.0 - torch.exp(-sigma * (step * model.distance_scale))  # [N, S]
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], dim=1), dim=1)
    weights = alpha * transmittance[:, :-1]  # [N, S]

    shade = weights > WEIGHT_THRESHOLD
    colors = torch.zeros(*t.shape, 3, device=origins.device, dtype=origins.dtype)  # [N, S, 3]
    if shade.any():
        view_dirs = dirs[:, None].expand_as(points)
        colors[shade] = model.color(points[shade], view_dirs[shade])
    opacity = weights.sum(dim=1)  # [N]
    rest = (1.0 - opacity).clamp(min=0.0)
    rgb = (weights[..., None] * colors).sum(dim=1) + rest[:, None] * model.background(dirs)
    depth = (weights * t).sum(dim=1) + rest * far
    return RayOutput(rgb=rgb, depth=depth, opacity=opacity)


@dataclass(frozen=True)
class ImageOutput:
    """A rendered view as numpy arrays."""

    rgb: np.ndarray  # [H, W, 3] float32 in [0, 1]
    depth: np.ndarray  # [H, W] float32 distance along each pixel's ray
    opacity: np.ndarray  # [H, W] float32


@torch.no_grad()
def render_image(
    model: TensorVM,
    camera: PinholeCamera,
    cam_from_world: np.ndarray | Tensor,
    *,
    min_near: float,
    chunk: int = 8192,
    step_ratio: float | None = None,
) -> ImageOutput:
    """Render one view ``chunk`` rays at a time, so memory stays bounded at any image size.

    Args:
        model: the radiance field.
        camera: the pinhole camera at the output size.
        cam_from_world: the view.  # [3 or 4, 4]
        min_near: closest distance sampled in front of the camera.
        chunk: rays rendered at once.
        step_ratio: the sample spacing in voxel sizes; None: the model's training ``step_ratio``.

    Returns:
        Colour, depth and opacity images.
    """
    device = model.aabb.device
    pose = torch.as_tensor(np.asarray(cam_from_world, dtype=np.float32), device=device)
    origins, dirs = image_rays(camera, pose)
    step = None if step_ratio is None else model.step_size / model.step_ratio * step_ratio
    rgb = torch.empty(len(origins), 3)
    depth = torch.empty(len(origins))
    opacity = torch.empty(len(origins))
    for start in range(0, len(origins), chunk):
        part = slice(start, start + chunk)
        out = render_rays(model, origins[part], dirs[part], min_near=min_near, step=step)
        rgb[part], depth[part], opacity[part] = out.rgb.cpu(), out.depth.cpu(), out.opacity.cpu()
    h, w = camera.height, camera.width
    return ImageOutput(
        rgb=rgb.clamp(0, 1).view(h, w, 3).numpy(),
        depth=depth.view(h, w).numpy(),
        opacity=opacity.view(h, w).numpy(),
    )
