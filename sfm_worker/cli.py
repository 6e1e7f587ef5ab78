"""``vid2scene sfm VIDEO --out DIR``: run structure from motion on one video, with a progress bar."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from shared.exit_codes import ExitCode
from shared.options.base import PRESET_NAMES
from shared.stage_cli import invalid_options, run_with_progress_bar, stage_command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sfm`` sub-command."""
    parser = subparsers.add_parser(
        "sfm",
        help="structure from motion: a video in, posed frames and scene.json out",
        description="Select sharp frames from VIDEO, reconstruct the cameras with COLMAP and write a scene directory.",
    )
    parser.add_argument("video", type=Path, metavar="VIDEO", help="the input video (MP4, MOV, MKV or WebM)")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="the scene directory to write")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="standard", help="quality preset (default: standard)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="select at most N frames")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")
    parser.set_defaults(func=run)


@stage_command("sfm")
def run(args: argparse.Namespace) -> int:
    """Run the stage for parsed ``args``; returns the exit code (``shared.exit_codes``)."""
    from sfm_worker.pipeline import run_sfm
    from shared.options.sfm import SfmOptions

    overrides: dict[str, object] = {}
    if args.max_frames is not None:
        overrides["max_frames"] = args.max_frames
    if args.seed is not None:
        overrides["seed"] = args.seed
    try:
        options = SfmOptions.from_preset(args.preset, **overrides)
    except ValueError as exc:
        raise invalid_options(exc) from exc

    result = run_with_progress_bar("sfm", functools.partial(run_sfm, args.video, args.out, options))
    print(json.dumps({"scene_dir": str(result.scene_dir), **result.metrics()}, indent=2))
    return ExitCode.OK
