"""``vid2scene run|demo|serve``: the one-command local mode.

``run VIDEO -o OUT`` starts the whole stack in this process (:class:`vid2scene.local.LocalStack`),
submits the video through the API, shows a progress bar per stage and downloads the artifacts
into OUT. ``demo -o OUT`` (or ``run --demo -o OUT``) does the same on a sample video that it
renders first. ``serve`` keeps the stack up and prints its URL until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from shared.options.base import default_preset_for
from vid2scene.client import ApiError, Vid2SceneClient
from vid2scene.client_commands import (
    EXIT_ERROR,
    add_job_options,
    exit_code_for,
    fetch_artifacts,
    follow,
    upload,
)
from vid2scene.embedded_mongo import EmbeddedMongoError
from vid2scene.local import LocalStack, LocalStackError, cuda_available

#: The sample video of ``demo``: small enough to reconstruct and train in a few minutes on 2 CPU cores.
DEMO_VIDEO = {"width": 320, "height": 180, "n_frames": 48, "fps": 24.0, "seed": 0}

#: Overrides of the ``preview`` preset for the demo on a CPU (the sample is tiny and textured).
DEMO_CPU_OPTIONS: dict[str, dict[str, Any]] = {
    "sfm": {"target_frames": 32, "max_long_side": 320},
    "gs": {
        "iterations": 200,
        "max_long_side": 160,
        "flythrough_seconds": 3.0,
        "flythrough_fps": 10,
        "flythrough_long_side": 160,
    },
    "nerf": {"iterations": 200, "flythrough_seconds": 3.0, "flythrough_fps": 10, "flythrough_long_side": 120},
}


def render_demo_video(folder: Path) -> Path:
    """Render the project's sample orbit video into ``folder``; returns the video path."""
    from shared.synthetic_scene import render_capture

    print(f"rendering the sample video into {folder} ...", file=sys.stderr)
    return render_capture(folder, **DEMO_VIDEO).video


def choose_preset(requested: str | None, *, gpu: bool) -> str:
    """The preset to run: the one asked for, else the device's (:func:`shared.options.base.default_preset_for`)."""
    if requested is not None:
        return requested
    preset, reason = default_preset_for("cuda" if gpu else "cpu")
    if not gpu:
        print(f"{reason}; pass --preset standard to override", file=sys.stderr)
    return preset


def merge_options(base: dict[str, dict[str, Any]], extra: dict[str, Any] | None) -> dict[str, Any]:
    """Per-stage overrides ``extra`` on top of ``base`` (stage by stage, key by key)."""
    merged: dict[str, Any] = {stage: dict(values) for stage, values in base.items()}
    for stage, values in (extra or {}).items():
        merged[stage] = {**merged.get(stage, {}), **(values if isinstance(values, dict) else {})}
    return merged


def log_to_file(log_path: Path, *, verbose: bool) -> None:
    """Send the stack's INFO logs to ``log_path``; the terminal keeps warnings (everything with ``-v``).

    The progress bars are the terminal's view of a run; the service's request and worker logs
    would tear them apart.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if not verbose:
        for handler in root.handlers:
            handler.setLevel(logging.WARNING)
    file_handler = logging.FileHandler(log_path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler.setLevel(logging.INFO)
    root.addHandler(file_handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))


def cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    demo = bool(args.demo)
    if demo == (args.video is not None):
        print("error: give a VIDEO, or --demo to render the sample video", file=sys.stderr)
        return EXIT_ERROR
    if not demo and not Path(args.video).is_file():
        print(f"error: {args.video} is not a file", file=sys.stderr)
        return EXIT_ERROR
    out.mkdir(parents=True, exist_ok=True)
    gpu = cuda_available() if args.device != "cpu" else False
    args.preset = choose_preset(args.preset, gpu=gpu)
    if demo:
        video = render_demo_video(out / "sample")
        if not gpu and args.preset == "preview":
            demo_options = {k: v for k, v in DEMO_CPU_OPTIONS.items() if k in ("sfm", *args.methods)}
            args.options = merge_options(demo_options, args.options)
    else:
        video = Path(args.video)
    stack = LocalStack(data_dir=args.data_dir or out / ".vid2scene", stages=("sfm", *args.methods), device=args.device)
    log_to_file(stack.data_dir / "logs" / "vid2scene.log", verbose=args.verbose)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cancels the job and stops the stack, as Ctrl-C does
    try:
        with stack:
            print(f"local vid2scene at {stack.url} (logs: {stack.data_dir / 'logs'})", file=sys.stderr)
            with Vid2SceneClient(stack.url) as client:
                job = upload(client, video, args)
                print(
                    f"job {job.id}: {', '.join(['sfm', *args.methods])} with the '{args.preset}' preset",
                    file=sys.stderr,
                )
                try:
                    job = follow(client, job.id, quiet=args.quiet)
                except KeyboardInterrupt:
                    print("\ninterrupted: cancelling the job", file=sys.stderr)
                    client.cancel(job.id)
                    return 130
                if job.status in ("succeeded", "partial"):
                    fetch_artifacts(client, job.id, out, quiet=args.quiet, skip_input=True)
                    print(f"artifacts in {out}", file=sys.stderr)
                return exit_code_for(job)
    except (EmbeddedMongoError, LocalStackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ApiError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR


def cmd_demo(args: argparse.Namespace) -> int:
    args.demo = True
    args.video = None
    return cmd_run(args)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir or Path.cwd() / "vid2scene-data")
    stack = LocalStack(data_dir=data_dir, port=args.port, device=args.device)
    log_to_file(stack.data_dir / "logs" / "vid2scene.log", verbose=args.verbose)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the stack as cleanly as Ctrl-C
    try:
        with stack:
            print(f"vid2scene is serving at {stack.url}  (API docs: {stack.url}/docs; Ctrl-C stops it)", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("\nstopping", file=sys.stderr)
    except (EmbeddedMongoError, LocalStackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _add_local_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="database and scratch space (default: OUT/.vid2scene)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="training device")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run``, ``demo`` and ``serve`` to the ``vid2scene`` parser."""
    p = subparsers.add_parser("run", help="reconstruct a video on this machine (the whole stack in one process)")
    p.add_argument("video", type=Path, nargs="?", default=None, help="the video file")
    p.add_argument("--demo", action="store_true", help="render the sample video and use it")
    p.add_argument("-o", "--out", type=Path, required=True, help="folder for the artifacts")
    add_job_options(p, default_preset=None)
    _add_local_arguments(p)
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("demo", help="render the sample video and reconstruct it on this machine")
    p.add_argument("-o", "--out", type=Path, required=True, help="folder for the sample and the artifacts")
    add_job_options(p, default_preset=None)
    _add_local_arguments(p)
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("serve", help="run the whole stack on this machine and keep it up")
    p.add_argument("--port", type=int, default=8000, help="loopback port of the API (0: any free port)")
    p.add_argument("--data-dir", type=Path, default=None, help="database and scratch space (default: ./vid2scene-data)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="training device")
    p.set_defaults(func=cmd_serve)
