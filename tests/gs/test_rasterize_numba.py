"""The compiled CPU rasterizer against the brute-force float64 renderer and the pure-PyTorch rasterizer.

The kernels compile once per session (the module fixture) and are cached on disk by numba.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pytest
import torch
from gsplat.strategy import DefaultStrategy

import gs_worker.rasterize as rasterize_module
from gs_worker.rasterize import rasterize, resolve_backend
from gs_worker.rasterize_numba import compiled_rasterizer_ready, rasterize_numba, warm_up_compiled_rasterizer
from gs_worker.rasterize_reference import render_reference
from tests.gs.test_rasterize import (
    SCENES,
    Gaussians,
    cam_from_world_looking_at,
    each,
    make_cameras,
    make_gaussians,
    weighted_loss,
)

WIDTH, HEIGHT = 64, 48  # 4 × 3 tiles


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    """Compile (or load from numba's cache) the kernels once for the module."""
    warm_up_compiled_rasterizer()


def two_cameras() -> tuple[torch.Tensor, torch.Tensor]:
    """Two float64 cameras around the origin for 64×48 images: viewmats [2, 4, 4], Ks [2, 3, 3]."""
    viewmats = torch.stack(
        [
            cam_from_world_looking_at([0.0, 0.0, -3.0], [0.0, 0.0, 0.0], torch.float64),
            cam_from_world_looking_at([2.0, -0.5, -2.2], [0.1, 0.0, 0.0], torch.float64),
        ]
    )
    K = torch.tensor([[60.0, 0.0, 32.3], [0.0, 58.0, 23.6], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return viewmats, torch.stack([K, K])


def scene(kind: str, sh_degree: int) -> Gaussians:
    """float64 Gaussians of one of the test scenes, seen by :func:`two_cameras`."""
    if kind == "isotropic":
        means, quats, scales, opacities, sh = make_gaussians(30, spread=1.2, scale=0.1, sh_degree=sh_degree, seed=11)
        return means, quats, scales[:, :1].expand(-1, 3).contiguous(), opacities, sh
    if kind == "stretched":  # 20:1 needles in random orientations
        means, quats, _, opacities, sh = make_gaussians(15, spread=1.0, scale=0.1, sh_degree=sh_degree, seed=12)
        scales = torch.tensor([0.4, 0.02, 0.02], dtype=torch.float64).expand(15, 3).contiguous()
        return means, quats, scales, opacities, sh
    if kind == "off-screen":  # centres beyond the image edges, their tails inside
        means, quats, scales, opacities, sh = make_gaussians(20, spread=0.5, scale=0.2, sh_degree=sh_degree, seed=13)
        sign = torch.where(torch.arange(20) % 2 == 0, 1.0, -1.0).to(torch.float64)
        means = means + torch.stack([sign * 1.9, sign * 0.0, torch.zeros(20, dtype=torch.float64)], dim=-1)
        return means, quats, scales, opacities, sh
    if kind == "huge":  # a few Gaussians much larger than a tile, covering the image, over small ones
        means, quats, scales, opacities, sh = make_gaussians(12, spread=1.0, scale=0.08, sh_degree=sh_degree, seed=14)
        scales[:3] = torch.tensor([1.5, 1.2, 1.0], dtype=torch.float64)[:, None]
        opacities[:3] = torch.tensor([0.3, 0.4, 0.5], dtype=torch.float64)
        return means, quats, scales, opacities, sh
    if kind == "dense":  # deep stacks: pixels reach the 1e-4 transmittance cut-off
        return make_gaussians(60, spread=0.3, scale=0.5, sh_degree=sh_degree, seed=15)
    raise ValueError(kind)


def render_all(gaussians: Gaussians, viewmats: torch.Tensor, Ks: torch.Tensor, sh_degree: int, backgrounds):
    """Render in float32 with both CPU backends and in float64 with the reference; return outputs and gradients.

    Returns ``({name: (colors, alphas, grads)}, info of the compiled rasterizer)`` with grads of ``weighted_loss``
    for means, quats, scales, opacities, SH, backgrounds and (not for the reference) means2d.
    """
    results: dict[str, tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]] = {}
    cpu_info: dict[str, Any] = {}
    renderers: tuple[Literal["cpu", "torch", "reference"], ...] = ("cpu", "torch", "reference")
    for name in renderers:
        dtype = torch.float64 if name == "reference" else torch.float32
        leaves = [t.to(dtype).requires_grad_() for t in (*gaussians, backgrounds)]
        means, quats, scales, opacities, sh, _ = leaves
        args = (means, quats, scales, opacities, sh, viewmats.to(dtype), Ks.to(dtype), WIDTH, HEIGHT)
        if name == "reference":
            colors, alphas = render_reference(*args, sh_degree=sh_degree, backgrounds=leaves[5])
            inputs = leaves
        else:
            colors, alphas, info = rasterize(*args, sh_degree=sh_degree, backgrounds=leaves[5], backend=name)
            inputs = [*leaves, info["means2d"]]
            cpu_info = info if name == "cpu" else cpu_info
        grads = torch.autograd.grad(weighted_loss(colors, alphas), inputs)
        results[name] = (colors.detach().double(), alphas.detach().double(), [g.double() for g in grads])
    return results, cpu_info


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two tensors, flattened."""
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


GRAD_NAMES = ("means", "quats", "scales", "opacities", "sh", "backgrounds", "means2d")


@pytest.mark.parametrize(
    ("kind", "sh_degree"),
    [("isotropic", 3), ("stretched", 2), ("off-screen", 1), ("huge", 0), ("dense", 3)],
)
def test_float32_pixels_and_gradients_match_the_reference_and_the_torch_rasterizer(kind: str, sh_degree: int):
    viewmats, Ks = two_cameras()
    backgrounds = torch.tensor([[0.2, 0.4, 0.6], [1.0, 0.0, 0.5]], dtype=torch.float64)
    results, info = render_all(scene(kind, sh_degree), viewmats, Ks, sh_degree, backgrounds)
    colors, alphas, grads = results["cpu"]

    assert alphas.max() > 0.5, "the scene must cover pixels"
    radii, centres = info["radii"].double(), info["means2d"].detach()
    shown = (radii > 0).all(-1)
    if kind == "stretched":
        assert (radii.amax(-1) >= 4 * radii.amin(-1))[shown].any(), "needles seen from the side"
    if kind == "off-screen":
        outside = (centres[..., 0] < 0) | (centres[..., 0] > WIDTH)
        assert (outside & shown).sum() >= 4, "centres outside the image, tails inside"
    if kind == "huge":
        assert (radii[shown] > WIDTH).any(), "Gaussians whose box covers the whole image"
    if kind == "dense":
        assert alphas.max() > 0.999, "pixels reach the transmittance cut-off"
    for other in ("reference", "torch"):
        other_colors, other_alphas, other_grads = results[other]
        assert float((colors - other_colors).abs().max()) <= 1e-4, other
        assert float((alphas - other_alphas).abs().max()) <= 1e-4, other
        for name, grad, expected in zip(GRAD_NAMES, grads, other_grads, strict=False):
            if kind == "isotropic" and name == "quats":  # a sphere does not change when rotated
                assert float(grad.abs().max()) < 1e-5 and float(expected.abs().max()) < 1e-5
                continue
            assert expected.abs().max() > 0, (other, name)
            assert cosine(grad, expected) >= 0.9999, (other, name, cosine(grad, expected))
    assert len(grads) == len(results["torch"][2]) == len(GRAD_NAMES)


def test_dense_scene_stops_pixels_at_the_transmittance_cutoff():
    viewmats, Ks = two_cameras()
    gaussians = each(scene("dense", 0), torch.Tensor.float)
    _, alphas, _ = rasterize_numba(*gaussians, viewmats.float(), Ks.float(), WIDTH, HEIGHT, sh_degree=0)
    transmittance = 1 - alphas.double()
    assert transmittance.min() < 1e-3
    assert transmittance.min() > 1e-4 - 1e-7


@pytest.mark.parametrize("scene_name", sorted(SCENES))
def test_float64_rendering_equals_the_brute_force_renderer_to_rounding(scene_name: str):
    gaussians = each(make_gaussians(**SCENES[scene_name], sh_degree=3, seed=1), torch.Tensor.requires_grad_)
    viewmats, Ks = make_cameras()
    backgrounds = torch.tensor([[0.2, 0.4, 0.6], [1.0, 0.0, 0.5]], dtype=torch.float64)
    colors, alphas, _ = rasterize_numba(*gaussians, viewmats, Ks, 24, 16, sh_degree=3, backgrounds=backgrounds)
    ref_colors, ref_alphas = render_reference(*gaussians, viewmats, Ks, 24, 16, sh_degree=3, backgrounds=backgrounds)
    assert colors.dtype == torch.float64
    torch.testing.assert_close(colors, ref_colors, atol=1e-10, rtol=0)
    torch.testing.assert_close(alphas, ref_alphas, atol=1e-10, rtol=0)
    grads = torch.autograd.grad(weighted_loss(colors, alphas), gaussians)
    ref_grads = torch.autograd.grad(weighted_loss(ref_colors, ref_alphas), gaussians)
    for name, grad, ref in zip(("means", "quats", "scales", "opacities", "sh"), grads, ref_grads, strict=True):
        assert ref.abs().max() > 0, name
        torch.testing.assert_close(grad, ref, atol=1e-9 * float(ref.abs().max()), rtol=1e-8, msg=name)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_every_sh_degree_matches_the_reference(sh_degree: int):
    viewmats, Ks = two_cameras()
    backgrounds = torch.zeros(2, 3, dtype=torch.float64)
    results, _ = render_all(scene("isotropic", sh_degree), viewmats, Ks, sh_degree, backgrounds)
    colors, _, grads = results["cpu"]
    ref_colors, _, ref_grads = results["reference"]
    assert float((colors - ref_colors).abs().max()) <= 1e-4
    assert cosine(grads[4], ref_grads[4]) >= 0.9999  # SH coefficients
    assert cosine(grads[0], ref_grads[0]) >= 0.9999  # means (view-dependent colour included from degree 1)


def test_gaussians_behind_the_camera_are_dropped_and_get_no_gradient():
    means, quats, scales, opacities, sh = (t.float() for t in scene("isotropic", 1))
    means = means.clone()
    means[:10, 2] = -4.0  # behind the camera at z = −3, which looks along +z
    means.requires_grad_()
    viewmats, Ks = (t[:1].float() for t in two_cameras())
    colors, alphas, info = rasterize_numba(
        means, quats, scales, opacities, sh, viewmats, Ks, WIDTH, HEIGHT, sh_degree=1
    )
    doubles = each((means.detach(), quats, scales, opacities, sh), torch.Tensor.double)
    ref_colors, _ = render_reference(*doubles, viewmats.double(), Ks.double(), WIDTH, HEIGHT, sh_degree=1)
    assert (info["radii"][0, :10] == 0).all() and (info["radii"][0, 10:] > 0).any()
    assert float((colors.detach().double() - ref_colors).abs().max()) <= 1e-4
    (colors.sum() + alphas.sum()).backward()
    assert means.grad is not None
    assert (means.grad[:10] == 0).all() and means.grad[10:].abs().sum() > 0


def test_a_camera_that_sees_no_gaussian_renders_the_background_with_zero_gradients():
    means, quats, scales, opacities, sh = (t.float() for t in scene("isotropic", 0))
    means = (means + torch.tensor([0.0, 0.0, -10.0])).requires_grad_()  # all behind both cameras
    sh = sh.clone().requires_grad_()
    viewmats, Ks = (t.float() for t in two_cameras())
    backgrounds = torch.tensor([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]], requires_grad=True)
    colors, alphas, info = rasterize_numba(
        means, quats, scales, opacities, sh, viewmats, Ks, WIDTH, HEIGHT, sh_degree=0, backgrounds=backgrounds
    )
    assert (info["radii"] == 0).all() and (alphas == 0).all()
    torch.testing.assert_close(colors, backgrounds.detach()[:, None, None, :].expand(2, HEIGHT, WIDTH, 3))
    colors.sum().backward()
    assert means.grad is not None and (means.grad == 0).all()
    assert sh.grad is not None and (sh.grad == 0).all()
    torch.testing.assert_close(backgrounds.grad, torch.full((2, 3), float(HEIGHT * WIDTH)))


def test_auto_resolves_to_the_compiled_rasterizer_and_falls_back_to_torch_without_numba(
    monkeypatch: pytest.MonkeyPatch,
):
    gaussians = each(scene("isotropic", 1), torch.Tensor.float)
    viewmats, Ks = (t.float() for t in two_cameras())
    assert resolve_backend("auto", torch.device("cpu")) == "cpu"
    colors, _, info = rasterize(*gaussians, viewmats, Ks, WIDTH, HEIGHT, sh_degree=1)
    direct, _, _ = rasterize_numba(*gaussians, viewmats, Ks, WIDTH, HEIGHT, sh_degree=1)
    assert torch.equal(colors, direct)
    assert info["radii"].shape == (2, 30, 2) and info["radii"].dtype == torch.int32
    assert (info["width"], info["height"], info["n_cameras"], info["gaussian_ids"]) == (WIDTH, HEIGHT, 2, None)

    monkeypatch.setattr(rasterize_module, "numba_available", lambda: False)
    assert resolve_backend("auto", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="numba"):
        resolve_backend("cpu", torch.device("cpu"))
    assert resolve_backend("torch", torch.device("cpu")) == "torch"


def test_the_compiled_rasterizer_is_ready_after_warm_up():
    assert compiled_rasterizer_ready()


def test_default_strategy_densifies_from_the_compiled_rasterizer_info():
    means, quats, scales, opacities, sh = (t.float() for t in scene("isotropic", 1))
    params = torch.nn.ParameterDict(
        {
            "means": means,
            "quats": quats,
            "scales": torch.log(scales),
            "opacities": torch.logit(opacities),
            "sh0": sh[:, :1].clone(),
            "shN": sh[:, 1:].clone(),
        }
    )
    optimizers = {name: torch.optim.Adam([param], lr=1e-3) for name, param in params.items()}
    strategy = DefaultStrategy(refine_start_iter=0, refine_every=3, grow_grad2d=1e-12, prune_opa=0.0)
    state = strategy.initialize_state(scene_scale=1.0)
    viewmats, Ks = (t.float() for t in two_cameras())
    target = torch.rand(1, HEIGHT, WIDTH, 3, generator=torch.Generator().manual_seed(0))
    n_start = len(params["means"])
    for step in range(4):
        cam = step % 2
        colors, _, info = rasterize(
            params["means"],
            params["quats"],
            torch.exp(params["scales"]),
            torch.sigmoid(params["opacities"]),
            torch.cat([params["sh0"], params["shN"]], dim=1),
            viewmats[cam : cam + 1],
            Ks[cam : cam + 1],
            WIDTH,
            HEIGHT,
            sh_degree=1,
            backend="cpu",
        )
        strategy.step_pre_backward(params, optimizers, state, step, info)
        ((colors - target) ** 2).mean().backward()
        assert info["means2d"].grad is not None and info["means2d"].grad.abs().sum() > 0
        strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
        for optimizer in optimizers.values():
            optimizer.step()
            optimizer.zero_grad()
    assert len(params["means"]) > n_start, "a tiny grow threshold must duplicate or split Gaussians"
    assert all(bool(torch.isfinite(p).all()) for p in params.values())
    assert math.isfinite(float(colors.detach().sum()))
