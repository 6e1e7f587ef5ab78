"""``vid2scene train-nerf SCENE_DIR --out DIR``: train TensoRF on a scene directory, with a progress bar."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.errors import StageError
from shared.options.base import PRESET_NAMES

#: Exit code for a typed stage failure (broken scene, divergence, out of memory, ...).
EXIT_STAGE_ERROR = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-nerf`` sub-command."""
    parser = subparsers.add_parser(
        "train-nerf",
        help="train a TensoRF radiance field on a scene directory",
        description=(
            "Train TensoRF (VM decomposition) with SfM depth supervision on SCENE_DIR and write "
            "flythrough-nerf.mp4, tensorf.pt and report.json into DIR."
        ),
    )
    parser.add_argument("scene_dir", type=Path, metavar="SCENE_DIR", help="a scene directory from `vid2scene sfm`")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="the output directory")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="standard", help="quality preset (default: standard)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=None, help="compute device (default: auto)"
    )
    parser.add_argument(
        "--depth-weight", type=float, default=None, metavar="W", help="SfM depth loss weight; 0 turns it off"
    )
    parser.add_argument("--iterations", type=int, default=None, metavar="N", help="optimisation steps")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the stage for parsed ``args``; returns the exit code."""
    from tqdm import tqdm

    from nerf_worker.pipeline import train_tensorf
    from shared.options.nerf import TensorfOptions

    names = {"device": "device", "depth_weight": "depth_weight", "iterations": "iterations", "seed": "seed"}
    overrides = {field: getattr(args, attr) for attr, field in names.items() if getattr(args, attr) is not None}
    try:
        options = TensorfOptions.from_preset(args.preset, **overrides)
    except ValueError as exc:
        print(f"vid2scene train-nerf: invalid options: {exc}", file=sys.stderr)
        return EXIT_STAGE_ERROR

    with tqdm(total=1000, desc="nerf", unit="‰", bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:

        def on_progress(fraction: float, message: str) -> None:
            bar.n = round(min(max(fraction, 0.0), 1.0) * 1000)
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        try:
            result = train_tensorf(args.scene_dir, args.out, options, on_progress)
        except StageError as exc:
            bar.close()
            print(f"vid2scene train-nerf: {exc.code.value}: {exc.message}", file=sys.stderr)
            return EXIT_STAGE_ERROR
    summary = {k: result.metrics[k] for k in ("heldout_psnr", "heldout_ssim", "initial_psnr", "iterations", "seconds")}
    print(json.dumps({"out_dir": str(result.out_dir), **summary}, indent=2))
    return 0
