"""Camera rays from the scene manifest's pinhole camera (OpenCV: x right, y down, z forward).

Pixel ``(u, v)`` covers ``[u, u+1) × [v, v+1)``; its ray passes through the centre ``(u+0.5, v+0.5)``.
Directions are unit vectors in the world, so a ray parameter ``t`` is a distance in world units.
"""

from __future__ import annotations

import torch
from torch import Tensor

from shared.manifest import PinholeCamera


def world_from_cam(cam_from_world: Tensor) -> Tensor:
    """Invert rigid transforms.  # [..., 3 or 4, 4] -> [..., 4, 4]"""
    rot = cam_from_world[..., :3, :3]
    t = cam_from_world[..., :3, 3:]
    out = torch.zeros(*cam_from_world.shape[:-2], 4, 4, dtype=cam_from_world.dtype, device=cam_from_world.device)
    out[..., :3, :3] = rot.transpose(-1, -2)
    out[..., :3, 3:] = -rot.transpose(-1, -2) @ t
    out[..., 3, 3] = 1.0
    return out


def rays_at_pixels(camera: PinholeCamera, cam_from_world: Tensor, uv: Tensor) -> tuple[Tensor, Tensor]:
    """Rays through sub-pixel positions, each with its own camera.

    Args:
        camera: the shared pinhole camera.
        cam_from_world: one transform per ray, or one for all.  # [N or 1, 3 or 4, 4]
        uv: image positions in pixels (pixel centres at ``+0.5``).  # [N, 2]

    Returns:
        ``(origins, directions)`` in the world, directions of unit length.  # [N, 3], [N, 3]
    """
    x = (uv[:, 0] - camera.cx) / camera.fx
    y = (uv[:, 1] - camera.cy) / camera.fy
    dirs_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # [N, 3]
    w_from_c = world_from_cam(cam_from_world.to(uv.dtype))  # [N or 1, 4, 4]
    dirs = (w_from_c[:, :3, :3] @ dirs_cam[:, :, None])[:, :, 0]
    origins = w_from_c[:, :3, 3].expand_as(dirs)
    return origins, dirs / dirs.norm(dim=-1, keepdim=True)


def image_rays(camera: PinholeCamera, cam_from_world: Tensor) -> tuple[Tensor, Tensor]:
    """Rays through every pixel centre of one view, row-major.

    Args:
        camera: the pinhole camera (its width and height set the image size).
        cam_from_world: the view.  # [3 or 4, 4]

    Returns:
        ``(origins, directions)``.  # [H*W, 3], [H*W, 3]
    """
    device = cam_from_world.device
    v, u = torch.meshgrid(
        torch.arange(camera.height, device=device, dtype=torch.float32) + 0.5,
        torch.arange(camera.width, device=device, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    uv = torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)
    return rays_at_pixels(camera, cam_from_world[None], uv)


def near_far(origins: Tensor, dirs: Tensor, aabb: Tensor, min_near: float) -> tuple[Tensor, Tensor]:
    """Where each ray enters and leaves the box (slab test).

    Args:
        origins: ray origins.  # [N, 3]
        dirs: unit ray directions.  # [N, 3]
        aabb: the box, rows min and max.  # [2, 3]
        min_near: the closest distance sampled in front of a camera.

    Returns:
        ``(near, far)`` distances; a ray that misses the box has ``far <= near``.  # [N], [N]
    """
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (aabb[0] - origins) / safe
    t1 = (aabb[1] - origins) / safe
    near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=min_near)
    far = torch.maximum(t0, t1).amin(dim=-1)
    return near, far


def project(camera: PinholeCamera, cam_from_world: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """Project world points into one view.

    Args:
        camera: the pinhole camera.
        cam_from_world: the view.  # [3 or 4, 4]
        points: world points.  # [N, 3]

    Returns:
        ``(uv, z)``: pixel positions and camera-space depth.  # [N, 2], [N]
    """
    cam = points @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    z = cam[:, 2]
    uv = torch.stack([camera.fx * cam[:, 0] / z + camera.cx, camera.fy * cam[:, 1] / z + camera.cy], dim=-1)
    return uv, z
