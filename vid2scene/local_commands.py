"""``vid2scene run|demo|serve``: the one-command local mode.

``run VIDEO -o OUT`` starts the whole stack in this process (:class:`vid2scene.local.LocalStack`),
submits the video through the API, shows a progress bar per stage and downloads the artifacts
into OUT. ``demo -o OUT`` (or ``run --demo -o OUT``) does the same on a sample video that it
renders first. ``serve`` keeps the stack up and prints its URL until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.device import device_class
from shared.errors import StageError
from shared.exit_codes import ExitCode, exit_code_for_error
from shared.output_dir import staged_output_dir
from shared.stage_cli import choose_preset
from vid2scene.client import JobView, ServerError, Vid2SceneClient
from vid2scene.client_commands import (
    add_job_options,
    exit_code_for,
    fetch_artifacts,
    follow,
    upload,
    wanted_artifacts,
)
from vid2scene.embedded_mongo import EmbeddedMongoError
from vid2scene.local import LocalStack, LocalStackError

#: The sample video of ``demo``: small enough to reconstruct and train in a few minutes on 2 CPU cores.
DEMO_VIDEO: dict[str, Any] = {"width": 320, "height": 180, "n_frames": 48, "fps": 24.0, "seed": 0}

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


def merge_options(base: dict[str, dict[str, Any]], extra: dict[str, Any] | None) -> dict[str, Any]:
    """Per-stage overrides ``extra`` on top of ``base`` (stage by stage, key by key)."""
    merged: dict[str, Any] = {stage: dict(values) for stage, values in base.items()}
    for stage, values in (extra or {}).items():
        merged[stage] = {**merged.get(stage, {}), **(values if isinstance(values, dict) else {})}
    return merged


@contextmanager
def logging_to_file(log_path: Path, *, verbose: int) -> Iterator[None]:
    """Send the stack's INFO logs to ``log_path`` while the block runs; the terminal keeps warnings
    (everything with ``-v``).

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
    level = root.level
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    try:
        yield
    finally:
        root.removeHandler(file_handler)
        file_handler.close()
        root.setLevel(level)


@contextmanager
def run_data_dir(requested: Path | None) -> Iterator[Path]:
    """The local stack's database and scratch folder for one ``run``.

    Args:
        requested: ``--data-dir``: kept after the run. None: a fresh folder in the system's
            temporary directory (``TMPDIR``), outside the output folder, removed when the run ends
            however it ends.
    """
    if requested is not None:
        yield Path(requested)
        return
    folder = Path(tempfile.mkdtemp(prefix="vid2scene-run-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_video_locally(video: Path) -> StageError | None:
    """Check ``video`` as the server's upload check does (``shared.video.probe_video_header`` with the same limits);
    returns the error (``INVALID_VIDEO``, ``VIDEO_TOO_LONG``) with the server's message, or None for a usable video."""
    from shared.settings import Settings
    from shared.video import probe_video_header
    from web_server.intake import video_limits

    try:
        probe_video_header(video, video_limits(Settings()))
    except StageError as exc:
        return exc
    return None


def publish_artifacts(client: Vid2SceneClient, job: JobView, out: Path, *, quiet: bool) -> list[Path]:
    """Download a finished job's artifacts (not the uploaded video) and move them into ``out`` together.

    The files go to a hidden sibling of ``out`` first, so a download that breaks leaves ``out`` as it was.

    Returns:
        The paths in ``out``.
    """
    names = wanted_artifacts(job)
    if not names:
        return []
    with staged_output_dir(out, names) as staging:
        fetch_artifacts(client, job, names, staging, quiet=quiet)
    return [out / name for name in names]


def cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    demo = bool(args.demo)
    if demo == (args.video is not None):
        print("error: give a VIDEO, or --demo to render the sample video", file=sys.stderr)
        return ExitCode.ERROR
    if not demo:
        if not Path(args.video).is_file():
            print(f"error: {args.video} is not a file", file=sys.stderr)
            return ExitCode.ERROR
        if (refused := check_video_locally(Path(args.video))) is not None:  # seconds, not a stack start-up
            print(f"error: {refused.code.value}: {refused.message}", file=sys.stderr)
            return exit_code_for_error(refused.code)
    gpu = device_class(args.device) == "cuda"
    args.preset = choose_preset("run", args.preset, args.device)
    with run_data_dir(args.data_dir) as data_dir:
        if demo:
            video = render_demo_video(data_dir / "sample")
            if not gpu and args.preset == "preview":
                demo_options = {k: v for k, v in DEMO_CPU_OPTIONS.items() if k in ("sfm", *args.methods)}
                args.options = merge_options(demo_options, args.options)
        else:
            video = Path(args.video)
        stack = LocalStack(data_dir=data_dir, stages=("sfm", *args.methods), device=args.device)
        with logging_to_file(data_dir / "logs" / "vid2scene.log", verbose=args.verbose):
            code = _run_on_stack(stack, video, out, args)
        if demo and code in (ExitCode.OK, ExitCode.PARTIAL):
            (out / "sample").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(video, out / "sample" / "video.mp4")
        if code not in (ExitCode.OK, ExitCode.PARTIAL, ExitCode.INTERRUPTED) and args.data_dir is None:
            print("service logs are not kept; see them with -v, or keep them with --data-dir DIR", file=sys.stderr)
        return code


def _run_on_stack(stack: LocalStack, video: Path, out: Path, args: argparse.Namespace) -> ExitCode:
    """Start ``stack``, run ``video`` through it and publish the artifacts into ``out``."""
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cancels the job and stops the stack, as Ctrl-C does
    try:
        with stack:
            logs = f"logs: {stack.data_dir / 'logs'}" if args.data_dir is not None else "logs kept with --data-dir"
            print(f"local vid2scene at {stack.url} ({logs})", file=sys.stderr)
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
                    return ExitCode.INTERRUPTED
                if job.status in ("succeeded", "partial"):
                    for path in publish_artifacts(client, job, out, quiet=args.quiet):
                        print(path)
                    print(f"artifacts in {out}", file=sys.stderr)
                return exit_code_for(job)
    except (EmbeddedMongoError, LocalStackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    except ServerError as exc:  # the local API refused the job (its options, say)
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return ExitCode.ERROR


def cmd_demo(args: argparse.Namespace) -> int:
    args.demo = True
    args.video = None
    return cmd_run(args)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir or Path.cwd() / "vid2scene-data")
    stack = LocalStack(data_dir=data_dir, port=args.port, device=args.device)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the stack as cleanly as Ctrl-C
    try:
        with logging_to_file(data_dir / "logs" / "vid2scene.log", verbose=args.verbose), stack:
            print(f"vid2scene is serving at {stack.url}  (API docs: {stack.url}/docs; Ctrl-C stops it)", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("\nstopping", file=sys.stderr)
    except (EmbeddedMongoError, LocalStackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.OK


def _add_local_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the database, scratch space and logs here (default: a temporary folder, removed at the end)",
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
