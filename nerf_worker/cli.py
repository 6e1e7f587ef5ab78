"""``vid2scene train-nerf SCENE_DIR --out DIR``: train TensoRF on a scene directory, with a progress bar."""

from __future__ import annotations

import argparse
import functools
import json

from shared.exit_codes import ExitCode
from shared.stage_cli import (
    add_training_arguments,
    default_preset,
    invalid_options,
    parse_set_options,
    run_with_progress_bar,
    stage_command,
)


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
    add_training_arguments(parser)
    parser.add_argument(
        "--depth-weight", type=float, default=None, metavar="W", help="SfM depth loss weight; 0 turns it off"
    )
    parser.set_defaults(func=run)


@stage_command("train-nerf")
def run(args: argparse.Namespace) -> int:
    """Run the stage for parsed ``args``; returns the exit code (``shared.exit_codes``)."""
    from nerf_worker.pipeline import train_tensorf
    from shared.options.nerf import TensorfOptions

    preset = default_preset("train-nerf", args.preset, args.device)
    given = {name: getattr(args, name) for name in ("device", "depth_weight", "iterations", "seed")}
    overrides: dict[str, object] = {name: value for name, value in given.items() if value is not None}
    try:
        overrides.update(parse_set_options(args.set))
        options = TensorfOptions.from_preset(preset, **overrides)
    except ValueError as exc:
        raise invalid_options(exc) from exc

    result = run_with_progress_bar("nerf", functools.partial(train_tensorf, args.scene_dir, args.out, options))
    summary = {k: result.metrics[k] for k in ("heldout_psnr", "heldout_ssim", "initial_psnr", "iterations", "seconds")}
    print(json.dumps({"out_dir": str(result.out_dir), **summary}, indent=2))
    return ExitCode.OK
