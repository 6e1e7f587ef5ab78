"""Held-out PSNR of Gaussian-splat training against iterations (a benchmark, not a test).

Scenes: the project's synthetic scene (``shared.synthetic_scene``, true cameras and surface points),
without and with 1000 extra points on its textured backdrop (``write_ground_truth_scene(backdrop_points=...)``;
without them held-out PSNR is capped near 15-25 dB), and, with ``--garden``, the SfM scene of
the garden capture (``tests.fixtures.data_files.GARDEN_VIDEO``; ``run_sfm``, ``preview`` preset). For
each scene, one run of ``--iterations`` steps per densification strategy, scored on the held-out
frames at each checkpoint along the way (the position learning rate decays over the whole run, so
step k of a long run is not a k-step run). The reference column is the
same run with a fixed set of Gaussians (``strategy=none``); the last column is ours minus it.

Usage:
    python bench/bench_gs_psnr.py [--iterations 300] [--size 160x90] [--garden] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from gs_worker.init import init_splats
from gs_worker.model import create_params
from gs_worker.pipeline import evaluate_splats
from gs_worker.train import train
from shared.options.gs import SplatOptions
from shared.scene_loader import SceneData, load_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.fixtures

from tests.fixtures.data_files import GARDEN_VIDEO


def _score(params: torch.nn.ParameterDict, data: SceneData, sh_degree: int) -> tuple[float, float]:
    result = evaluate_splats(params, data, sh_degree)
    return result["psnr"], result["ssim"]


def run_curve(
    data: SceneData, options: SplatOptions, checkpoints: list[int]
) -> list[tuple[int, float, float, int, float]]:
    """``(step, psnr, ssim, gaussians, seconds)`` at step 0 and every checkpoint of one run."""
    params = create_params(
        init_splats(data.points_xyz, data.points_rgb, sh_degree=options.sh_degree, max_points=options.max_gaussians),
        torch.device("cpu"),
    )
    psnr0, ssim0 = _score(params, data, 0)
    rows = [(0, psnr0, ssim0, len(params["means"]), 0.0)]
    started = time.perf_counter()
    scoring = [0.0]

    def on_progress(fraction: float, message: str) -> None:
        step = round(fraction * options.iterations)
        if step in checkpoints and step != rows[-1][0]:
            t = time.perf_counter()
            degree = min(step // options.sh_degree_interval, options.sh_degree)
            p, s = _score(params, data, degree)
            scoring[0] += time.perf_counter() - t
            rows.append((step, p, s, len(params["means"]), time.perf_counter() - started - scoring[0]))

    with torch.random.fork_rng():
        torch.manual_seed(options.seed)
        train(params, data, options, torch.device("cpu"), on_progress=on_progress)
    return rows


def bench_scene(name: str, data: SceneData, iterations: int, checkpoints: list[int], reference: bool) -> None:
    """Print the PSNR-against-iterations table of one scene."""
    base = SplatOptions.from_preset(
        "preview",
        iterations=iterations,
        max_long_side=max(data.camera.width, data.camera.height),
        sh_degree=1,
        sh_degree_interval=max(1, iterations // 3),
        refine_start_iter=max(1, iterations // 6),
        refine_stop_iter=max(2, iterations * 5 // 6),
        refine_every=max(1, iterations // 6),
    )
    print(
        f"\n{name}: {data.camera.width}x{data.camera.height}, {len(data.train_frames)} train / "
        f"{len(data.test_frames)} held-out frames, {len(data.points_xyz)} SfM points",
        flush=True,
    )
    ours = run_curve(data, base, checkpoints)
    ref = run_curve(data, base.model_copy(update={"strategy": "none"}), checkpoints) if reference else None
    print("| step | PSNR, DefaultStrategy (dB) | SSIM | Gaussians | s | PSNR, fixed set (reference) | SSIM | Δ PSNR |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, (step, p, s, n, sec) in enumerate(ours):
        if ref is None:
            print(f"| {step} | {p:.2f} | {s:.3f} | {n} | {sec:.0f} | – | – | – |")
        else:
            _, rp, rs, _, _ = ref[i]
            print(f"| {step} | {p:.2f} | {s:.3f} | {n} | {sec:.0f} | {rp:.2f} | {rs:.3f} | {p - rp:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--size", default="160x90", help="synthetic scene size WxH")
    parser.add_argument("--frames", type=int, default=40, help="synthetic scene frames")
    parser.add_argument("--backdrop-points", type=int, default=1000, help="points added on the backdrop (0: skip)")
    parser.add_argument("--no-reference", action="store_true", help="skip the fixed-set reference runs")
    parser.add_argument("--garden", action="store_true", help="also run SfM on the garden video and train on it")
    parser.add_argument("--garden-long-side", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoints = sorted({args.iterations * k // 6 for k in range(1, 7)})
    width, height = (int(v) for v in args.size.split("x"))

    from shared.synthetic_scene import write_ground_truth_scene

    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "synthetic"
        write_ground_truth_scene(scene, width=width, height=height, n_frames=args.frames, seed=0)
        bench_scene(
            "synthetic scene",
            load_scene(scene, max(width, height)),
            args.iterations,
            checkpoints,
            not args.no_reference,
        )
        if args.backdrop_points:
            scene = Path(tmp) / "synthetic-backdrop"
            write_ground_truth_scene(
                scene, width=width, height=height, n_frames=args.frames, seed=0, backdrop_points=args.backdrop_points
            )
            data = load_scene(scene, max(width, height))
            bench_scene("synthetic scene + backdrop points", data, args.iterations, checkpoints, not args.no_reference)
        if args.garden:
            from sfm_worker.pipeline import run_sfm
            from shared.options.sfm import SfmOptions

            garden = Path(tmp) / "garden"
            run_sfm(GARDEN_VIDEO, garden, SfmOptions.from_preset("preview"))
            bench_scene(
                "garden-orbit-480p.mp4 (SfM)",
                load_scene(garden, args.garden_long_side),
                args.iterations,
                checkpoints,
                not args.no_reference,
            )


if __name__ == "__main__":
    main()
