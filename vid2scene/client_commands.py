"""``vid2scene submit|status|wait|download|cancel|jobs|delete``: the API client on the command line.

Each command talks to ``--server`` (or ``VID2SCENE_SERVER``) with ``--api-key`` (or
``VID2SCENE_API_KEY``). Job ids and paths go to stdout; progress bars and messages to stderr.

Exit codes: 0 success; 1 an error (the API's code and message are printed); 2 a job that ended
``partial`` (some artifacts exist, a stage failed); 3 a job that ended ``failed`` or ``cancelled``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vid2scene.client import ApiError, JobView, Vid2SceneClient
from vid2scene.progress_view import StageBars, bytes_bar, bytes_callback

DEFAULT_SERVER = "http://127.0.0.1:8000"

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2, 3

CommandFn = Callable[[argparse.Namespace], int]


def exit_code_for(job: JobView) -> int:
    """The process exit code that a finished job's status stands for."""
    return {"succeeded": EXIT_OK, "partial": EXIT_PARTIAL}.get(job.status, EXIT_FAILED)


def parse_methods(text: str) -> list[str]:
    """``"gs,nerf"`` → ``["gs", "nerf"]``; raises ``argparse.ArgumentTypeError`` for unknown names."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ("gs", "nerf")]
    if not methods or unknown:
        raise argparse.ArgumentTypeError(f"methods are gs, nerf or gs,nerf (got {text!r})")
    return list(dict.fromkeys(methods))


def parse_options(text: str) -> dict[str, Any]:
    """``--options``: a JSON object, or ``@path`` to a JSON file, of per-stage overrides."""
    try:
        raw = Path(text[1:]).read_text() if text.startswith("@") else text
        value = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"--options must be a JSON object or @file.json: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('--options must be a JSON object such as {"gs": {"iterations": 3000}}')
    return value


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--server`` and ``--api-key`` (defaults from ``VID2SCENE_SERVER`` / ``VID2SCENE_API_KEY``)."""
    parser.add_argument(
        "--server",
        default=os.environ.get("VID2SCENE_SERVER", DEFAULT_SERVER),
        help=f"the vid2scene server (env VID2SCENE_SERVER; default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("VID2SCENE_API_KEY"),
        help="your API key (env VID2SCENE_API_KEY)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def add_job_options(parser: argparse.ArgumentParser, *, default_preset: str | None = "standard") -> None:
    """``--methods``, ``--preset``, ``--options``, ``--name`` (shared by ``submit`` and ``run``)."""
    parser.add_argument(
        "--methods", type=parse_methods, default=["gs"], help="training stages after SfM: gs, nerf or gs,nerf"
    )
    parser.add_argument(
        "--preset", choices=("preview", "standard", "high"), default=default_preset, help="quality preset"
    )
    parser.add_argument(
        "--options",
        type=parse_options,
        default=None,
        help='per-stage overrides as JSON or @file.json, e.g. \'{"gs": {"iterations": 3000}}\'',
    )
    parser.add_argument("--name", default=None, help="a label for the job")


def handles_api_errors(fn: CommandFn) -> CommandFn:
    """Turn :class:`ApiError` and ``TimeoutError`` into a message on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ApiError as exc:
            print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
            return EXIT_ERROR
        except TimeoutError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR

    return wrapper


def _client(args: argparse.Namespace) -> Vid2SceneClient:
    return Vid2SceneClient(args.server, args.api_key)


def upload(client: Vid2SceneClient, video: Path, args: argparse.Namespace) -> JobView:
    """Submit ``video`` with the job options in ``args``, drawing an upload bar."""
    with bytes_bar(f"upload {video.name}", video.stat().st_size, disable=args.quiet) as bar:
        return client.submit(
            video,
            methods=args.methods,
            preset=args.preset,
            options=args.options,
            name=args.name,
            on_bytes=bytes_callback(bar),
        )


def follow(client: Vid2SceneClient, job_id: str, *, quiet: bool, timeout_s: float | None = None) -> JobView:
    """Wait for a job with one progress bar per stage; prints the outcome to stderr."""
    with StageBars(disable=quiet) as bars:
        job = client.wait(job_id, on_update=bars.update, timeout_s=timeout_s)
    print(f"job {job.id}: {job.status}", file=sys.stderr)
    if job.status != "succeeded" and (message := job.failure_message()):
        print(message, file=sys.stderr)
    return job


def fetch_artifacts(
    client: Vid2SceneClient,
    job_id: str,
    out: Path,
    *,
    quiet: bool,
    names: list[str] | None = None,
    skip_input: bool = False,
) -> list[Path]:
    """Download a job's artifacts into ``out``, one bar per file; prints each path to stdout.

    Args:
        client: the API client.
        job_id: the job.
        out: the folder to write into.
        quiet: draw no bars.
        names: only these artifacts (None: all).
        skip_input: leave out the uploaded video (``input.*``), which the caller already has.
    """
    listed = [a.name for a in client.get(job_id).artifacts]
    wanted = [n for n in listed if (names is None or n in names) and not (skip_input and n.startswith("input."))]
    paths = []
    for name in wanted:
        with bytes_bar(name, None, disable=quiet) as bar:
            paths.append(client.download(job_id, name, Path(out) / Path(name).name, on_bytes=bytes_callback(bar)))
    for path in paths:
        print(path)
    return paths


def describe(job: JobView) -> str:
    """A few human lines about a job: status, stages with progress and errors, artifacts."""
    head = f"job {job.id}" + (f" ({job.name})" if job.name else "") + f": {job.status}"
    if job.queue_position is not None and job.status == "queued":
        head += f", position {job.queue_position} in the queue"
    lines = [head]
    for stage in job.stages:
        line = f"  {stage.name:<5} {stage.status:<10} {100 * stage.progress:5.1f}%"
        if stage.attempt > 1:
            line += f"  attempt {stage.attempt}"
        if stage.message:
            line += f"  {stage.message}"
        lines.append(line)
        if stage.error:
            lines.append(f"        {stage.error.code}: {stage.error.message}")
    if job.error:
        lines.append(f"  error {job.error.code}: {job.error.message}")
    if job.artifacts:
        lines.append("  artifacts: " + ", ".join(a.name for a in job.artifacts))
    return "\n".join(lines)


@handles_api_errors
def cmd_submit(args: argparse.Namespace) -> int:
    video = Path(args.video)
    if not video.is_file():
        print(f"error: {video} is not a file", file=sys.stderr)
        return EXIT_ERROR
    with _client(args) as client:
        job = upload(client, video, args)
        print(job.id)
        if not args.wait:
            print(f"submitted job {job.id}; follow it with: vid2scene wait {job.id}", file=sys.stderr)
            return EXIT_OK
        return exit_code_for(follow(client, job.id, quiet=args.quiet))


@handles_api_errors
def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.get(args.job)
    print(job.model_dump_json(indent=2) if args.json else describe(job))
    return EXIT_OK


@handles_api_errors
def cmd_wait(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = follow(client, args.job, quiet=args.quiet, timeout_s=args.timeout)
        if args.out is not None and job.status in ("succeeded", "partial"):
            fetch_artifacts(client, job.id, Path(args.out), quiet=args.quiet)
    return exit_code_for(job)


@handles_api_errors
def cmd_download(args: argparse.Namespace) -> int:
    with _client(args) as client:
        paths = fetch_artifacts(client, args.job, Path(args.out), quiet=args.quiet, names=args.only)
    if not paths:
        print(f"job {args.job} has no artifacts (yet)", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


@handles_api_errors
def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.cancel(args.job)
    print(f"job {job.id}: {job.status}", file=sys.stderr)
    return EXIT_OK


@handles_api_errors
def cmd_jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list(limit=args.limit, status=args.status, cursor=args.cursor)
    for job in page.jobs:
        print(f"{job.id}  {job.status:<10} {job.name or ''}")
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
    return EXIT_OK


@handles_api_errors
def cmd_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.delete(args.job)
    print(f"deleted job {args.job}", file=sys.stderr)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the client commands to the ``vid2scene`` parser."""
    p = subparsers.add_parser("submit", help="upload a video to a vid2scene server and start a job")
    p.add_argument("video", type=Path, help="the video file")
    add_job_options(p)
    p.add_argument("--wait", action="store_true", help="follow the job until it ends")
    add_server_arguments(p)
    p.set_defaults(func=cmd_submit)

    p = subparsers.add_parser("status", help="show a job")
    p.add_argument("job", help="the job id")
    p.add_argument("--json", action="store_true", help="print the job as JSON")
    add_server_arguments(p)
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("wait", help="follow a job with progress bars until it ends")
    p.add_argument("job", help="the job id")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument("-o", "--out", type=Path, default=None, help="then download the artifacts here")
    add_server_arguments(p)
    p.set_defaults(func=cmd_wait)

    p = subparsers.add_parser("download", help="download a job's artifacts (resumes partial files)")
    p.add_argument("job", help="the job id")
    p.add_argument("-o", "--out", type=Path, required=True, help="folder to write the files into")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these artifacts")
    add_server_arguments(p)
    p.set_defaults(func=cmd_download)

    p = subparsers.add_parser("cancel", help="stop a running job (finished files stay)")
    p.add_argument("job", help="the job id")
    add_server_arguments(p)
    p.set_defaults(func=cmd_cancel)

    p = subparsers.add_parser("jobs", help="list your jobs, newest first")
    p.add_argument("--limit", type=int, default=20, help="jobs per page")
    p.add_argument("--status", default=None, help="only jobs in this status")
    p.add_argument("--cursor", default=None, help="continue from a previous page")
    add_server_arguments(p)
    p.set_defaults(func=cmd_jobs)

    p = subparsers.add_parser("delete", help="cancel a job if it runs, then delete its files and record")
    p.add_argument("job", help="the job id")
    add_server_arguments(p)
    p.set_defaults(func=cmd_delete)
