"""TensoRF's vector-matrix (VM) decomposition in plain PyTorch.

A feature at a point ``p`` of the scene box is a sum over the three axis-aligned splits of
``plane_i(p[a_i, b_i]) * line_i(p[c_i])``, one product per component. Density takes the sum of all
density components through a shifted softplus; appearance concatenates its components, maps them
through a linear basis to spherical-harmonic (degree 2) colour coefficients and evaluates them in
the viewing direction. A second, direction-only SH term colours what the rays see beyond the box
(far background of 360° captures). An optional occupancy grid (the alpha mask) skips empty space.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 - the PyTorch idiom

#: For split i, the plane spans axes ``PLANE_AXES[i]`` (width axis, height axis) and the line axis
#: ``LINE_AXES[i]``: xy-plane × z-line, xz-plane × y-line, yz-plane × x-line.
PLANE_AXES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))
LINE_AXES: tuple[int, ...] = (2, 1, 0)
SH_DEGREE = 2
SH_COEFFS = (SH_DEGREE + 1) ** 2

_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)


def sh_basis(dirs: Tensor) -> Tensor:
    """Real spherical-harmonic basis of degree 2.

    Args:
        dirs: unit directions.  # [N, 3]

    Returns:
        The 9 basis values per direction.  # [N, 9]
    """
    x, y, z = dirs.unbind(-1)
    return torch.stack(
        [
            torch.full_like(x, _C0),
            -_C1 * y,
            _C1 * z,
            -_C1 * x,
            _C2[0] * x * y,
            _C2[1] * y * z,
            _C2[2] * (2.0 * z * z - x * x - y * y),
            _C2[3] * x * z,
            _C2[4] * (x * x - y * y),
        ],
        dim=-1,
    )


def grid_resolution(aabb: Tensor, n_voxels: int) -> list[int]:
    """Per-axis grid size with about ``n_voxels`` cubic voxels in the box.

    Args:
        aabb: the box, rows min and max.  # [2, 3]
        n_voxels: the total voxel budget.

    Returns:
        ``[nx, ny, nz]``, each at least 2.
    """
    extent = (aabb[1] - aabb[0]).double()
    voxel = (extent.prod() / n_voxels) ** (1.0 / 3.0)
    return [max(2, int(v)) for v in (extent / voxel).round().tolist()]


class TensorVM(nn.Module):
    """A TensoRF VM radiance field over an axis-aligned box.

    Args:
        aabb: the scene box in world coordinates.  # [2, 3]
        resolution: grid size per axis ``[nx, ny, nz]``.
        density_components: components per split for density.
        appearance_components: components per split for appearance.
        step_ratio: ray-marching step as a fraction of the mean voxel size.
        density_shift: added to the density feature before the softplus (negative: starts empty).
        distance_scale: multiplies density × step, so densities stay O(1) in a unit-sized world.
        init_scale: standard deviation of the initial factors.
    """

    aabb: Tensor  # a buffer  # [2, 3]
    alpha_mask: Tensor  # a buffer  # [Dz, Dy, Dx]

    def __init__(
        self,
        aabb: Tensor,
        resolution: list[int],
        *,
        density_components: int = 16,
        appearance_components: int = 48,
        step_ratio: float = 0.5,
        density_shift: float = -10.0,
        distance_scale: float = 25.0,
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.register_buffer("aabb", aabb.detach().clone().float())  # [2, 3]
        self.register_buffer("alpha_mask", torch.ones(1, 1, 1, dtype=torch.bool))  # [Dz, Dy, Dx]
        self.resolution = [int(r) for r in resolution]
        self.density_components = density_components
        self.appearance_components = appearance_components
        self.step_ratio = step_ratio
        self.density_shift = density_shift
        self.distance_scale = distance_scale
        self.density_planes, self.density_lines = self._factors(density_components, init_scale)
        self.appearance_planes, self.appearance_lines = self._factors(appearance_components, init_scale)
        self.appearance_basis = nn.Linear(3 * appearance_components, 3 * SH_COEFFS, bias=False)
        self.background_sh = nn.Parameter(torch.zeros(3, SH_COEFFS))  # [3, 9], colour = sigmoid(SH)

    # --- construction ---------------------------------------------------------------------------
    def _factors(self, components: int, scale: float) -> tuple[nn.ParameterList, nn.ParameterList]:
        planes, lines = nn.ParameterList(), nn.ParameterList()
        for (a, b), c in zip(PLANE_AXES, LINE_AXES, strict=True):
            r = self.resolution
            planes.append(nn.Parameter(scale * torch.randn(1, components, r[b], r[a])))  # [1, R, H=b, W=a]
            lines.append(nn.Parameter(scale * torch.randn(1, components, r[c], 1)))  # [1, R, L=c, 1]
        return planes, lines

    def metadata(self) -> dict[str, object]:
        """Plain-primitive hyper-parameters that rebuild this model (see :meth:`from_metadata`)."""
        return {
            "aabb": self.aabb.tolist(),
            "resolution": list(self.resolution),
            "alpha_mask_shape": list(self.alpha_mask.shape),
            "density_components": self.density_components,
            "appearance_components": self.appearance_components,
            "step_ratio": self.step_ratio,
            "density_shift": self.density_shift,
            "distance_scale": self.distance_scale,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> TensorVM:
        """An uninitialised model of the shape ``meta`` describes, ready for ``load_state_dict``."""
        model = cls(
            torch.tensor(meta["aabb"], dtype=torch.float32),
            list(meta["resolution"]),
            density_components=int(meta["density_components"]),
            appearance_components=int(meta["appearance_components"]),
            step_ratio=float(meta["step_ratio"]),
            density_shift=float(meta["density_shift"]),
            distance_scale=float(meta["distance_scale"]),
        )
        model.alpha_mask = torch.ones(*meta["alpha_mask_shape"], dtype=torch.bool)
        return model

    # --- geometry -------------------------------------------------------------------------------
    @property
    def step_size(self) -> float:
        """World-space distance between ray samples at the current resolution."""
        extent = self.aabb[1] - self.aabb[0]
        units = extent / (torch.tensor(self.resolution, dtype=extent.dtype, device=extent.device) - 1)
        return float(units.mean()) * self.step_ratio

    def max_samples(self) -> int:
        """Samples needed to cross the box diagonal at :attr:`step_size`."""
        diag = float((self.aabb[1] - self.aabb[0]).norm())
        return math.ceil(diag / self.step_size) + 1

    def normalize(self, points: Tensor) -> Tensor:
        """World points to box coordinates in ``[-1, 1]``.  # [N, 3] -> [N, 3]"""
        return (points - self.aabb[0]) / (self.aabb[1] - self.aabb[0]) * 2.0 - 1.0

    def occupied(self, points: Tensor) -> Tensor:
        """Whether each world point lies in the box and in an occupied cell of the alpha mask.

        Args:
            points: world points.  # [N, 3]

        Returns:
            A boolean per point.  # [N]
        """
        u = (points - self.aabb[0]) / (self.aabb[1] - self.aabb[0])  # [N, 3] in [0, 1] inside
        inside = ((u >= 0) & (u <= 1)).all(-1)
        shape = torch.tensor(self.alpha_mask.shape[::-1], device=points.device)  # [Dx, Dy, Dz]
        idx = (u * shape).long().clamp(min=torch.zeros_like(shape), max=shape - 1)  # [N, 3]
        return inside & self.alpha_mask[idx[:, 2], idx[:, 1], idx[:, 0]]

    # --- fields ---------------------------------------------------------------------------------
    @staticmethod
    def _sample(planes: nn.ParameterList, lines: nn.ParameterList, xyz: Tensor) -> list[Tensor]:
        """Per-split products of plane and line features at box coordinates.  # [N, 3] -> 3 × [R, N]"""
        out = []
        for plane, line, (a, b), c in zip(planes, lines, PLANE_AXES, LINE_AXES, strict=True):
            plane_grid = xyz[:, [a, b]].view(1, -1, 1, 2)  # [1, N, 1, 2] as (x=width, y=height)
            line_grid = torch.stack([torch.zeros_like(xyz[:, c]), xyz[:, c]], dim=-1).view(1, -1, 1, 2)
            p = F.grid_sample(plane, plane_grid, mode="bilinear", align_corners=True).view(plane.shape[1], -1)
            q = F.grid_sample(line, line_grid, mode="bilinear", align_corners=True).view(line.shape[1], -1)
            out.append(p * q)  # [R, N]
        return out

    def density(self, points: Tensor) -> Tensor:
        """Volume density at world points.  # [N, 3] -> [N]"""
        feats = self._sample(self.density_planes, self.density_lines, self.normalize(points))
        return F.softplus(torch.stack(feats).sum(dim=(0, 1)) + self.density_shift)

    def color(self, points: Tensor, dirs: Tensor) -> Tensor:
        """Radiance at world points seen along unit directions.  # [N, 3], [N, 3] -> [N, 3]"""
        feats = self._sample(self.appearance_planes, self.appearance_lines, self.normalize(points))
        coeffs = self.appearance_basis(torch.cat(feats, dim=0).T).view(-1, 3, SH_COEFFS)  # [N, 3, 9]
        return torch.sigmoid((coeffs * sh_basis(dirs)[:, None, :]).sum(-1))

    def background(self, dirs: Tensor) -> Tensor:
        """Colour of what lies beyond the box in each direction.  # [N, 3] -> [N, 3]"""
        return torch.sigmoid(sh_basis(dirs) @ self.background_sh.T)

    # --- regularisers ---------------------------------------------------------------------------
    def density_l1(self) -> Tensor:
        """Mean absolute value of the density factors (sparsity)."""
        pairs = zip(self.density_planes, self.density_lines, strict=True)
        terms = [plane.abs().mean() + line.abs().mean() for plane, line in pairs]
        return torch.stack(terms).sum()

    def total_variation(self) -> tuple[Tensor, Tensor]:
        """Mean squared neighbour differences of the density and appearance planes."""

        def tv(planes: nn.ParameterList) -> Tensor:
            terms = [
                (p[..., 1:, :] - p[..., :-1, :]).pow(2).mean() + (p[..., :, 1:] - p[..., :, :-1]).pow(2).mean()
                for p in planes
            ]
            return torch.stack(terms).sum()

        return tv(self.density_planes), tv(self.appearance_planes)

    # --- schedule hooks -------------------------------------------------------------------------
    @torch.no_grad()
    def upsample(self, resolution: list[int]) -> None:
        """Resample every plane and line to a new grid size (bilinear / linear, corners aligned).

        The factors are replaced by new parameters, so the optimiser must be rebuilt afterwards.
        """
        self.resolution = [int(r) for r in resolution]
        for planes, lines in (
            (self.density_planes, self.density_lines),
            (self.appearance_planes, self.appearance_lines),
        ):
            for i, ((a, b), c) in enumerate(zip(PLANE_AXES, LINE_AXES, strict=True)):
                size_p = (self.resolution[b], self.resolution[a])
                size_l = (self.resolution[c], 1)
                planes[i] = nn.Parameter(
                    F.interpolate(planes[i].data, size=size_p, mode="bilinear", align_corners=True)
                )
                lines[i] = nn.Parameter(F.interpolate(lines[i].data, size=size_l, mode="bilinear", align_corners=True))

    @torch.no_grad()
    def update_alpha_mask(self, threshold: float, chunk: int = 65536) -> float:
        """Recompute the occupancy grid at the current resolution from the density field.

        A cell is occupied when the opacity of one ray-marching step through it exceeds
        ``threshold``, dilated by one cell so thin surfaces are not cut.

        Args:
            threshold: opacity per step below which a cell counts as empty.
            chunk: points evaluated at once (bounds memory).

        Returns:
            The fraction of cells marked empty.
        """
        nx, ny, nz = self.resolution
        device = self.aabb.device
        axes = [torch.linspace(0.0, 1.0, n, device=device) for n in (nz, ny, nx)]
        gz, gy, gx = torch.meshgrid(*axes, indexing="ij")
        u = torch.stack([gx, gy, gz], dim=-1).view(-1, 3)  # [Dz*Dy*Dx, 3]
        points = self.aabb[0] + u * (self.aabb[1] - self.aabb[0])
        sigma = torch.cat([self.density(points[i : i + chunk]) for i in range(0, len(points), chunk)])
        alpha = 1.0 - torch.exp(-sigma * self.step_size * self.distance_scale)
        occupied = (alpha > threshold).view(1, 1, nz, ny, nx).float()
        occupied = F.max_pool3d(occupied, kernel_size=3, stride=1, padding=1)[0, 0] > 0
        self.alpha_mask = occupied
        return 1.0 - float(occupied.float().mean())
