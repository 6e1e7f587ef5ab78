"""Time the tiled CPU rasterizer against the brute-force reference renderer (forward + backward).

Prints a Markdown table: per scene size, the median CPU seconds (process time, so that other jobs on a shared machine
disturb it less than wall time) of one forward+backward pass of each renderer, the ratio (reference / ours) and the
largest pixel difference between them. Both run in float32 on the same random scene (Gaussians in a cube in front of
one camera, SH degree 1). Usage:

    python bench/bench_rasterizer.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from gs_worker.rasterize_cpu import rasterize_cpu
from gs_worker.rasterize_reference import render_reference

SIZES = ((500, 64, 48), (2000, 64, 48), (500, 128, 96), (2000, 128, 96))
OURS_ONLY = ((20000, 320, 180),)


def make_scene(n: int, width: int, height: int, seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Random Gaussians in front of a camera at the origin: (parameters, viewmats [1, 4, 4], Ks [1, 3, 3])."""
    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=gen) - 0.5) * torch.tensor([2.0, 1.5, 2.0]) + torch.tensor([0.0, 0.0, 3.0])
    quats = torch.randn(n, 4, generator=gen)
    scales = 0.01 + 0.04 * torch.rand(n, 3, generator=gen)
    opacities = 0.1 + 0.8 * torch.rand(n, generator=gen)
    sh = 0.5 * torch.randn(n, 4, 3, generator=gen)
    focal = 0.9 * width
    Ks = torch.tensor([[[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]]])
    return [means, quats, scales, opacities, sh], torch.eye(4)[None], Ks


def time_pass(
    render: Callable[..., tuple[torch.Tensor, ...]],
    scene: tuple[list[torch.Tensor], torch.Tensor, torch.Tensor],
    width: int,
    height: int,
    repeats: int,
) -> tuple[float, torch.Tensor]:
    """Median CPU seconds of forward + backward of ``sum(colors) + sum(alphas)``, and the last image."""
    params, viewmats, Ks = scene
    seconds = []
    for _ in range(repeats):
        leaves = [p.detach().clone().requires_grad_() for p in params]
        start = time.process_time()
        colors, alphas = render(*leaves, viewmats, Ks, width, height, sh_degree=1)[:2]
        (colors.sum() + alphas.sum()).backward()
        seconds.append(time.process_time() - start)
    return statistics.median(seconds), colors.detach()


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per renderer (median reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"CPU rasterizer vs brute-force reference, forward+backward, float32, {args.threads} thread(s), CPU seconds")
    print()
    print("| Gaussians | image | ours (CPU s) | reference (CPU s) | reference / ours | max pixel diff |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, width, height in SIZES + OURS_ONLY:
        scene = make_scene(n, width, height)
        time_pass(rasterize_cpu, scene, width, height, 1)  # warm-up
        ours_s, ours_img = time_pass(rasterize_cpu, scene, width, height, args.repeats)
        if (n, width, height) in OURS_ONLY:
            print(f"| {n} | {width}×{height} | {ours_s:.3f} | — | — | — |")
            continue
        ref_s, ref_img = time_pass(render_reference, scene, width, height, 1)
        diff = float((ours_img - ref_img).abs().max())
        print(f"| {n} | {width}×{height} | {ours_s:.3f} | {ref_s:.2f} | {ref_s / ours_s:.0f}× | {diff:.1e} |")


if __name__ == "__main__":
    main()
