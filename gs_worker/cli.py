"""``vid2scene train-gs SCENE_DIR --out DIR``: train Gaussian splats on a scene, with a progress bar."""

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
    """Add the ``train-gs`` sub-command."""
    parser = subparsers.add_parser(
        "train-gs",
        help="train Gaussian splats on a scene directory: every splat format, a viewer page, a flythrough",
        description=(
            "Train 3D Gaussians on the posed frames of SCENE_DIR (written by `vid2scene sfm`) and write "
            "scene.ply, scene.splat, scene.spz, scene.compressed.ply, scene.html, flythrough-gs.mp4 and "
            "report.json into DIR."
        ),
    )
    add_training_arguments(parser)
    parser.set_defaults(func=run)


@stage_command("train-gs")
def run(args: argparse.Namespace) -> int:
    """Run the stage for parsed ``args``; returns the exit code (``shared.exit_codes``)."""
    from gs_worker.pipeline import train_splats
    from shared.options.gs import SplatOptions

    preset = default_preset("train-gs", args.preset, args.device)
    overrides: dict[str, object] = {"device": args.device}
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    if args.seed is not None:
        overrides["seed"] = args.seed
    try:
        overrides.update(parse_set_options(args.set))
        options = SplatOptions.from_preset(preset, **overrides)
    except ValueError as exc:
        raise invalid_options(exc) from exc

    result = run_with_progress_bar("gs", functools.partial(train_splats, args.scene_dir, args.out, options))
    metrics = result.metrics.model_dump(mode="json", exclude={"heldout_per_frame"})
    print(json.dumps({"out_dir": str(result.out_dir), **metrics}, indent=2))
    return ExitCode.OK
