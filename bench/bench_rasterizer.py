"""Time the compiled CPU rasterizer (numba) against the pure-PyTorch one, forward + backward, wall time.

Prints two Markdown tables. The first: per scene size, the median wall seconds of one forward+backward pass of
``sum(colors) + sum(alphas)`` with each rasterizer at the same thread setting, the ratio (torch / ours), the largest
pixel difference between their images, and the median CPU seconds of the process (all threads; steadier than wall
time on a shared machine). The second: a small scene against the brute-force float64 reference
(correctness and scale). Both rasterizers run in float32 on the same random scene (Gaussians in a box in front of one
camera, SH degree 1, a few to tens of pixels across). The header states the threads and ``uptime``'s load average.
Usage:

    python bench/bench_rasterizer.py [--threads 2] [--repeats 3] [--skip-slow] [--only 20000x640x360,...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch (and its OpenMP runtime) is loaded

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import numba
import torch

from gs_worker.rasterize_cpu import rasterize_cpu
from gs_worker.rasterize_numba import rasterize_numba, warm_up_compiled_rasterizer
from gs_worker.rasterize_reference import render_reference

COUNTS = (5_000, 20_000, 60_000)
IMAGES = ((320, 180), (640, 360), (1280, 720))
#: Sizes whose PyTorch pass takes tens of seconds: left out with --skip-slow.
SLOW = {(60_000, 1280, 720)}
REFERENCE_SIZE = (2_000, 128, 96)

Scene = tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]


def make_scene(n: int, width: int, height: int, seed: int = 0) -> Scene:
    """Random Gaussians in front of a camera at the origin: (parameters, viewmats [1, 4, 4], Ks [1, 3, 3]).

    Centres fill a 2 × 1.5 × 2 box 2..4 in front of the camera, scales 0.01..0.05 (at 640×360 a Gaussian's standard
    deviation is about 2 to 15 px), opacities 0.1..0.9, SH degree 1.
    """
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
    render: Callable[..., tuple[Any, ...]], scene: Scene, width: int, height: int, repeats: int
) -> tuple[float, float, torch.Tensor]:
    """Median wall and median CPU seconds (all threads of the process) of forward + backward of
    ``sum(colors) + sum(alphas)``, and the last image."""
    params, viewmats, Ks = scene
    wall, cpu = [], []
    for _ in range(repeats):
        leaves = [p.detach().clone().requires_grad_() for p in params]
        start, start_cpu = time.perf_counter(), time.process_time()
        colors, alphas = render(*leaves, viewmats, Ks, width, height, sh_degree=1)[:2]
        (colors.sum() + alphas.sum()).backward()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), colors.detach()


def load_average() -> str:
    """``uptime``'s load average, e.g. ``"0.52, 0.61, 0.70"``."""
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout
    return out.rsplit("load average:", 1)[-1].strip()


def main() -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads of both torch and numba")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per rasterizer (median reported)")
    parser.add_argument("--skip-slow", action="store_true", help=f"leave out the PyTorch pass at {sorted(SLOW)}")
    parser.add_argument(
        "--only",
        default="",
        metavar="NxWxH,...",
        help="time only these cases, e.g. 20000x640x360,60000x640x360 (and skip the reference row)",
    )
    args = parser.parse_args()
    only = {tuple(int(v) for v in case.split("x")) for case in args.only.split(",") if case}
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    warm_up_compiled_rasterizer()

    print(
        f"Compiled (numba) vs PyTorch CPU rasterizer, forward+backward, float32, SH degree 1, {args.threads} thread(s), "
        f"median wall seconds of {args.repeats}; load average before: {load_average()}"
    )
    print()
    print(
        "| Gaussians | image | ours (s) | torch (s) | torch / ours | max pixel diff | ours (CPU s) | torch (CPU s) | CPU ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in COUNTS:
        for width, height in IMAGES:
            if only and (n, width, height) not in only:
                continue
            scene = make_scene(n, width, height)
            ours_s, ours_cpu, ours_img = time_pass(rasterize_numba, scene, width, height, args.repeats)
            if args.skip_slow and (n, width, height) in SLOW:
                print(
                    f"| {n} | {width}×{height} | {ours_s:.3f} | skipped | — | — | {ours_cpu:.3f} | — | — |", flush=True
                )
                continue
            torch_s, torch_cpu, torch_img = time_pass(rasterize_cpu, scene, width, height, args.repeats)
            diff = float((ours_img - torch_img).abs().max())
            print(
                f"| {n} | {width}×{height} | {ours_s:.3f} | {torch_s:.3f} | {torch_s / ours_s:.1f}× | {diff:.1e} "
                f"| {ours_cpu:.3f} | {torch_cpu:.3f} | {torch_cpu / ours_cpu:.1f}× |",
                flush=True,
            )
    print()
    if only:
        print(f"load average after: {load_average()}")
        return
    n, width, height = REFERENCE_SIZE
    scene = make_scene(n, width, height)
    ours_s, _, ours_img = time_pass(rasterize_numba, scene, width, height, args.repeats)
    reference = ([p.double() for p in scene[0]], scene[1].double(), scene[2].double())
    ref_s, _, ref_img = time_pass(render_reference, reference, width, height, 1)
    diff = float((ours_img.double() - ref_img).abs().max())
    print("| Gaussians | image | ours (s) | brute-force float64 reference (s) | reference / ours | max pixel diff |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {n} | {width}×{height} | {ours_s:.3f} | {ref_s:.2f} | {ref_s / ours_s:.0f}× | {diff:.1e} |")
    print()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
