"""The Gaussian model: trainable parameters, their optimisers, and rendering them into cameras.

Parameters are stored as gsplat's trainer stores them (and as the exports want them): log scales,
logit opacities, unnormalised w-first quaternions, SH coefficients split into the DC term ``sh0``
and the higher bands ``shN``. Each parameter has its own Adam optimiser, so gsplat's strategies can
grow and prune them together with their optimiser state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gs_worker.rasterize import Backend, rasterize
from shared.manifest import PinholeCamera

PARAM_NAMES: tuple[str, ...] = ("means", "scales", "quats", "opacities", "sh0", "shN")


@dataclass(frozen=True)
class LearningRates:
    """Adam learning rates per parameter, gsplat ``simple_trainer``'s defaults.

    ``means`` is multiplied by the scene scale and decays exponentially to 1 % over training.
    """

    means: float = 1.6e-4
    means_final_ratio: float = 0.01
    scales: float = 5e-3
    quats: float = 1e-3
    opacities: float = 5e-2
    sh0: float = 2.5e-3
    shN: float = 2.5e-3 / 20  # noqa: N815 - named as the parameter it drives


def create_params(splats: dict[str, np.ndarray], device: torch.device) -> torch.nn.ParameterDict:
    """Trainable float32 parameters on ``device`` from arrays in the :func:`gs_worker.init.init_splats` layout."""
    return torch.nn.ParameterDict(
        {
            name: torch.nn.Parameter(torch.as_tensor(splats[name], dtype=torch.float32, device=device).clone())
            for name in PARAM_NAMES
        }
    )


def create_optimizers(
    params: torch.nn.ParameterDict, scene_scale: float, lrs: LearningRates = LearningRates()
) -> dict[str, torch.optim.Optimizer]:
    """One Adam optimiser per parameter (one param group each, as gsplat's strategies require).

    ``eps`` is 1e-15 as in gsplat's trainer: the gradients of far or tiny Gaussians are very small.
    """
    rates = {
        "means": lrs.means * scene_scale,
        "scales": lrs.scales,
        "quats": lrs.quats,
        "opacities": lrs.opacities,
        "sh0": lrs.sh0,
        "shN": lrs.shN,
    }
    return {
        name: torch.optim.Adam([{"params": [params[name]], "lr": rate, "name": name}], eps=1e-15)
        for name, rate in rates.items()
    }


def means_scheduler(
    optimizers: dict[str, torch.optim.Optimizer], iterations: int, lrs: LearningRates = LearningRates()
) -> torch.optim.lr_scheduler.ExponentialLR:
    """Exponential decay of the position learning rate to ``means_final_ratio`` at ``iterations``."""
    gamma = lrs.means_final_ratio ** (1.0 / max(iterations, 1))
    return torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=gamma)


def camera_tensors(poses: np.ndarray, camera: PinholeCamera, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(viewmats [C, 4, 4], Ks [C, 3, 3])`` float32 on ``device`` for ``poses`` ``[C, 4, 4]`` of one camera."""
    viewmats = torch.as_tensor(np.asarray(poses, dtype=np.float32), device=device)
    K = torch.as_tensor(camera.K(), dtype=torch.float32, device=device)
    return viewmats, K.expand(len(viewmats), 3, 3).contiguous()


def render(
    params: torch.nn.ParameterDict | dict[str, Tensor],
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    *,
    sh_degree: int,
    backgrounds: Tensor | None = None,  # [C, 3]
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render the Gaussians into ``C`` cameras with SH bands up to ``sh_degree``.

    Returns:
        ``(colors [C, H, W, 3], alphas [C, H, W, 1], info)`` as :func:`gs_worker.rasterize.rasterize`.
    """
    n_coeffs = (sh_degree + 1) ** 2
    colors = torch.cat([params["sh0"], params["shN"]], dim=1)[:, :n_coeffs]  # [N, K, 3]
    return rasterize(
        params["means"],
        params["quats"],
        torch.exp(params["scales"]),
        torch.sigmoid(params["opacities"]),
        colors,
        viewmats,
        Ks,
        width,
        height,
        sh_degree=sh_degree,
        backgrounds=backgrounds,
        backend=backend,
    )


def export_arrays(params: torch.nn.ParameterDict | dict[str, Tensor]) -> dict[str, np.ndarray]:
    """The parameters as float32 numpy arrays on the CPU, in the layout the exporters take."""
    return {name: params[name].detach().float().cpu().numpy() for name in PARAM_NAMES}


def all_finite(params: torch.nn.ParameterDict | dict[str, Tensor]) -> bool:
    """Whether every parameter value is finite (no NaN or infinity)."""
    return all(bool(torch.isfinite(params[name]).all()) for name in PARAM_NAMES)
