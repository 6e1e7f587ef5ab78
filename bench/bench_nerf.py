"""Benchmark (not a test): TensoRF held-out PSNR against iterations, with and without SfM depth.

Trains the same options twice per scene, ``depth_weight`` on and off, and scores the held-out
frames at a few checkpoints of each run (scoring time is not counted as training time). Then, when
``gs_worker`` is installed, trains the splat stage on the same scene and frame size for reference.
Scenes: the project's synthetic scene (ground-truth cameras and points) and, when given or when
``--sfm`` is set, the garden video's SfM scene. Prints a Markdown table.

    python bench/bench_nerf.py --iterations 300 --checkpoints 50,100,200,300 \
        --garden-scene /path/to/garden/scene --out /tmp/bench_nerf
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from nerf_worker.depth_targets import depth_targets
from nerf_worker.pipeline import build_model, evaluate
from nerf_worker.train import train
from shared.options.nerf import TensorfOptions
from shared.progress import no_progress
from shared.scene_loader import load_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.fixtures

from tests.fixtures.data_files import GARDEN_VIDEO


def run_nerf(scene: Path, options: TensorfOptions, checkpoints: list[int]) -> dict[str, Any]:
    """Train once; held-out PSNR at each checkpoint step and the training seconds."""
    data = load_scene(scene, options.max_long_side)
    depth = depth_targets(data, scene, error_scale_px=options.depth_error_scale_px)
    model = build_model(data, options, "cpu")
    curve: dict[int, float] = {0: evaluate(model, data, options, no_progress)["psnr"]}
    scoring = [0.0]

    def on_progress(fraction: float, message: str) -> None:
        step = round(fraction * options.iterations)
        if step in checkpoints and step not in curve and message.startswith("step"):
            t = time.monotonic()
            with torch.no_grad():
                curve[step] = evaluate(model, data, options, no_progress)["psnr"]
            scoring[0] += time.monotonic() - t

    started = time.monotonic()
    train(model, data, depth, options, on_progress=on_progress)
    seconds = time.monotonic() - started - scoring[0]
    final = evaluate(model, data, options, no_progress)
    curve[options.iterations] = final["psnr"]
    return {"curve": curve, "seconds": seconds, "ssim": final["ssim"], "size": [data.camera.width, data.camera.height]}


def run_splats(scene: Path, out: Path, max_long_side: int, iterations: int) -> dict[str, Any] | None:
    """The splat stage's preview preset on the same scene and frame size, or None without gs_worker."""
    try:
        from gs_worker.pipeline import train_splats
    except ImportError:
        return None
    from shared.options.gs import SplatOptions

    options = SplatOptions.from_preset(
        "preview", device="cpu", max_long_side=max_long_side, iterations=iterations, flythrough_seconds=0.5
    )
    metrics = train_splats(scene, out, options).metrics
    return {"psnr": metrics.heldout_psnr, "ssim": metrics.heldout_ssim, "seconds": metrics.train_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_nerf"))
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--checkpoints", default="50,100,200")
    parser.add_argument("--max-long-side", type=int, default=128)
    parser.add_argument("--depth-weight", type=float, default=0.1)
    parser.add_argument("--step-ratio", type=float, default=0.5, help="ray-marching step in voxels")
    parser.add_argument("--gs-iterations", type=int, default=300)
    parser.add_argument("--garden-scene", type=Path, default=None, help="an SfM scene dir of the garden video")
    parser.add_argument("--sfm", action="store_true", help="run SfM on the garden video when no scene is given")
    parser.add_argument("--skip-gs", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    scenes: dict[str, Path] = {}
    synthetic = args.out / "synthetic"
    if not args.skip_synthetic:
        if not (synthetic / "scene.json").exists():
            from shared.synthetic_scene import write_ground_truth_scene

            write_ground_truth_scene(synthetic, width=160, height=90, n_frames=40, seed=0)
        scenes["synthetic 160×90, 40 views"] = synthetic
    if args.garden_scene is None and args.sfm and GARDEN_VIDEO.exists():
        from sfm_worker.pipeline import run_sfm
        from shared.options.sfm import SfmOptions

        args.garden_scene = args.out / "garden"
        if not (args.garden_scene / "scene.json").exists():
            run_sfm(GARDEN_VIDEO, args.garden_scene, SfmOptions.from_preset("preview"))
    if args.garden_scene is not None:
        scenes["garden (SfM)"] = args.garden_scene

    base = TensorfOptions.from_preset(
        "preview",
        device="cpu",
        iterations=args.iterations,
        max_long_side=args.max_long_side,
        batch_rays=512,
        step_ratio=args.step_ratio,
    )
    cols = [0, *checkpoints, args.iterations]
    cols = sorted(set(cols))
    print(
        f"TensoRF preview options, batch 512 rays, step ratio {args.step_ratio}, {args.iterations} iterations, "
        f"{args.max_long_side}-pixel long side, CPU, torch threads {torch.get_num_threads()}"
    )
    print()
    print("| scene | method | " + " | ".join(f"PSNR@{c}" for c in cols) + " | SSIM | train s |")
    print("|---|---|" + "---|" * (len(cols) + 2))
    for name, scene in scenes.items():
        for label, weight in (
            (f"TensoRF + depth ({args.depth_weight})", args.depth_weight),
            ("TensoRF, no depth", 0.0),
        ):
            result = run_nerf(scene, base.model_copy(update={"depth_weight": weight}), checkpoints)
            psnrs = " | ".join(f"{result['curve'].get(c, float('nan')):.2f}" for c in cols)
            print(f"| {name} | {label} | {psnrs} | {result['ssim']:.3f} | {result['seconds']:.0f} |", flush=True)
        if not args.skip_gs:
            gs_out = args.out / f"gs-{scene.name}"
            splats = run_splats(scene, gs_out, args.max_long_side, args.gs_iterations)
            if splats is not None:
                blanks = " | ".join("" for _ in cols[:-1])
                print(
                    f"| {name} | splats ({args.gs_iterations} it) | {blanks} | {splats['psnr']:.2f} | "
                    f"{splats['ssim']:.3f} | {splats['seconds']:.0f} |",
                    flush=True,
                )
            shutil.rmtree(gs_out, ignore_errors=True)


if __name__ == "__main__":
    main()
