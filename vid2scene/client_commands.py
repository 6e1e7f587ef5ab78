"""``vid2scene submit|rerun|runs|status|wait|download|cancel|jobs|delete``: the API client on the command line.

Each command talks to ``--server`` (or ``VID2SCENE_SERVER``) with ``--api-key`` (or
``VID2SCENE_API_KEY``). Job ids and paths go to stdout; progress bars and messages to stderr.

Exit codes are :class:`shared.exit_codes.ExitCode` (the table is in ``docs/cli.md``): 0 success;
1 an error (the API's code and message are printed, or an unusable input); 2 a partial result (a
job that ended ``partial``, a download that lacks files); 3 a job that failed or was cancelled.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared.exit_codes import ExitCode, exit_code_for_job
from vid2scene.client import JobView, ServerError, Vid2SceneClient
from vid2scene.progress_view import StageBars, bytes_bar, bytes_callback

DEFAULT_SERVER = "http://127.0.0.1:8000"

#: The environment variable that names the server when ``--server`` is not given.
SERVER_ENV = "VID2SCENE_SERVER"

CommandFn = Callable[[argparse.Namespace], int]


def exit_code_for(job: JobView) -> ExitCode:
    """The process exit code that a finished job stands for (:func:`shared.exit_codes.exit_code_for_job`)."""
    error = job.error or next((stage.error for stage in job.stages if stage.error), None)
    return exit_code_for_job(job.status, error.code if error else None)


def is_input(name: str) -> bool:
    """Whether an artifact is the uploaded video itself (``input.mp4``, ``input.webm``, ...)."""
    return name.startswith("input.")


def unreachable_hint(server: str) -> str:
    """What to do when ``server`` cannot be reached: start a local one, or name the right one."""
    if os.environ.get(SERVER_ENV) == server:
        source = f"from {SERVER_ENV}"
    elif server == DEFAULT_SERVER:
        source = "the default"
    else:
        source = "from --server"
    return (
        f"Is a vid2scene server running at {server} ({source})? Start one on this machine with "
        f"`vid2scene serve`, or name yours with --server URL or {SERVER_ENV}=URL; check the URL's scheme, "
        "host and port."
    )


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
        default=os.environ.get(SERVER_ENV, DEFAULT_SERVER),
        help=f"the vid2scene server (env {SERVER_ENV}; default {DEFAULT_SERVER})",
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


def report_server_error(exc: ServerError, server: str) -> ExitCode:
    """Print an API error (and, for an unreachable server, how to fix that); returns ``ExitCode.ERROR``."""
    print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
    if exc.code == "SERVER_UNREACHABLE":
        print(unreachable_hint(server), file=sys.stderr)
    return ExitCode.ERROR


def handles_api_errors(fn: CommandFn) -> CommandFn:
    """Turn :class:`ServerError` and ``TimeoutError`` into a message on stderr and ``ExitCode.ERROR``."""

    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ServerError as exc:
            return report_server_error(exc, args.server)
        except TimeoutError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return ExitCode.ERROR

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
            webhook_url=getattr(args, "webhook_url", None),
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
    client: Vid2SceneClient, job: JobView, names: Sequence[str], out: Path, *, quiet: bool
) -> list[Path]:
    """Download the artifacts ``names`` of a job into ``out``, one bar per file.

    Args:
        client: the API client.
        job: the job as last read (its artifact sizes start the bars).
        names: the artifacts to fetch, as the job lists them.
        out: the folder to write into (created when there is something to write).
        quiet: draw no bars.

    Returns:
        The written paths, in the order of ``names``.
    """
    sizes = {a.name: a.size for a in job.artifacts}
    paths = []
    for name in names:
        with bytes_bar(name, sizes.get(name), disable=quiet) as bar:
            paths.append(client.download(job.id, name, Path(out) / Path(name).name, on_bytes=bytes_callback(bar)))
    return paths


def wanted_artifacts(job: JobView, *, only: Sequence[str] | None = None, include_input: bool = False) -> list[str]:
    """The artifacts of ``job`` to download: those in ``only`` (None: all), without the uploaded video
    (``input.*``) unless ``include_input`` or ``only`` names it."""
    return [
        a.name for a in job.artifacts if (a.name in only if only is not None else include_input or not is_input(a.name))
    ]


def missing_outputs(job: JobView, *, only: Sequence[str] | None = None) -> str | None:
    """Say which of a job's files a download cannot have yet (or ever); None when nothing is missing.

    Args:
        job: the job as just read.
        only: the artifacts asked for by name (None: every file of every stage).
    """
    listed = {a.name for a in job.artifacts}
    if only is not None:
        absent = [name for name in only if name not in listed]
        if not absent:
            return None
        what = ", ".join(absent)
        if job.status == "succeeded":
            return f"job {job.id} has no {what}; its files are: {', '.join(sorted(listed)) or 'none'}"
        return f"job {job.id} is {job.status}: {what} not there" + (" yet" if not job.done else "")
    unfinished = [s for s in job.stages if s.status != "succeeded"]
    if job.status == "succeeded" or not unfinished:
        return None
    stages = ", ".join(
        f"{s.name} ({s.status}" + (f", {100 * s.progress:.0f}%" if s.status == "running" else "") + ")"
        for s in unfinished
    )
    if job.done:
        return f"job {job.id} ended {job.status}: the files of {stages} will not come"
    return f"job {job.id} is {job.status}: the files of {stages} are not there yet"


def describe(job: JobView) -> str:
    """A few human lines about a job: status, stages with progress and errors, artifacts."""
    head = f"job {job.id}" + (f" ({job.name})" if job.name else "") + f": {job.status}"
    if job.queue_position is not None and job.status == "queued":
        head += f", position {job.queue_position} in the queue"
    lines = [head]
    if job.from_job:
        reused = f", SfM reused from job {job.sfm_reused_from}" if job.sfm_reused_from else ""
        lines.append(f"  run of job {job.from_job}{reused}")
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
        return ExitCode.ERROR
    with _client(args) as client:
        job = upload(client, video, args)
        print(job.id)
        if not args.wait:
            print(f"submitted job {job.id}; follow it with: vid2scene wait {job.id}", file=sys.stderr)
            return ExitCode.OK
        return exit_code_for(follow(client, job.id, quiet=args.quiet))


@handles_api_errors
def cmd_rerun(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.rerun(args.job, methods=args.methods, preset=args.preset, options=args.options, name=args.name)
        print(job.id)
        sfm = f"SfM reused from job {job.sfm_reused_from}" if job.sfm_reused_from else "SfM runs again"
        if not args.wait:
            print(
                f"started run {job.id} of job {args.job} ({sfm}); follow it with: vid2scene wait {job.id}",
                file=sys.stderr,
            )
            return ExitCode.OK
        print(f"started run {job.id} of job {args.job} ({sfm})", file=sys.stderr)
        return exit_code_for(follow(client, job.id, quiet=args.quiet))


def heldout_psnr(job: JobView) -> str:
    """The held-out PSNR of each training stage that reports one, e.g. ``gs 24.31 dB, nerf 22.10 dB``."""
    parts = []
    for stage in job.stages:
        value = stage.metrics.get("heldout_psnr")
        if stage.name != "sfm" and isinstance(value, int | float):
            parts.append(f"{stage.name} {value:.2f} dB")
    return ", ".join(parts) or "-"


@handles_api_errors
def cmd_runs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.runs(args.job)
    if args.json:
        print(page.model_dump_json(indent=2))
        return ExitCode.OK
    for job in page.jobs:
        origin = "uploaded" if job.from_job is None else f"from {job.from_job}"
        line = f"{job.id}  {job.status:<10} {','.join(job.methods):<8} {job.preset or '':<9} {origin:<38}"
        print(f"{line} held-out PSNR: {heldout_psnr(job)}")
    runs = sum(job.from_job is not None for job in page.jobs)  # the uploaded job is left out once deleted
    print(f"{runs} of {page.max_runs} runs of job {page.root_job}", file=sys.stderr)
    return ExitCode.OK


@handles_api_errors
def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.get(args.job)
    print(job.model_dump_json(indent=2) if args.json else describe(job))
    return ExitCode.OK


@handles_api_errors
def cmd_wait(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = follow(client, args.job, quiet=args.quiet, timeout_s=args.timeout)
        if args.out is not None and job.status in ("succeeded", "partial"):
            finished = client.get(job.id)
            names = wanted_artifacts(finished, include_input=args.include_input)
            for path in fetch_artifacts(client, finished, names, Path(args.out), quiet=args.quiet):
                print(path)
    return exit_code_for(job)


@handles_api_errors
def cmd_download(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.get(args.job)
        names = wanted_artifacts(job, only=args.only, include_input=args.include_input)
        for path in fetch_artifacts(client, job, names, Path(args.out), quiet=args.quiet):
            print(path)
    missing = missing_outputs(job, only=args.only)
    if missing is None:
        return ExitCode.OK
    if args.partial:
        print(f"{missing} (downloaded {len(names)} file(s); --partial accepts that)", file=sys.stderr)
        return ExitCode.OK
    print(f"error: {missing}", file=sys.stderr)
    if job.status == "succeeded":  # files asked for by a name the job does not have
        return ExitCode.ERROR
    if not job.done:
        print(
            f"Wait for it and download everything with `vid2scene wait {job.id} -o {args.out}`, "
            "or pass --partial to accept the files there are.",
            file=sys.stderr,
        )
        return ExitCode.PARTIAL
    return exit_code_for(job)  # it ended without them: partial, failed or cancelled


@handles_api_errors
def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.cancel(args.job)
    print(f"job {job.id}: {job.status}", file=sys.stderr)
    return ExitCode.OK


@handles_api_errors
def cmd_jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.list(limit=args.limit, status=args.status, cursor=args.cursor)
    for job in page.jobs:
        print(f"{job.id}  {job.status:<10} {job.name or ''}")
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
    return ExitCode.OK


@handles_api_errors
def cmd_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.delete(args.job)
    print(f"deleted job {args.job}", file=sys.stderr)
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the client commands to the ``vid2scene`` parser."""
    p = subparsers.add_parser("submit", help="upload a video to a vid2scene server and start a job")
    p.add_argument("video", type=Path, help="the video file")
    add_job_options(p)
    p.add_argument(
        "--webhook-url", default=None, help="URL the server POSTs the job's signed events to (status, capture check)"
    )
    p.add_argument("--wait", action="store_true", help="follow the job until it ends")
    add_server_arguments(p)
    p.set_defaults(func=cmd_submit)

    p = subparsers.add_parser(
        "rerun",
        help="train again on a finished job's uploaded video and SfM result (no upload, no second SfM)",
        description=(
            "Start a run: a new job that trains --methods with --preset and --options on the stored video and "
            "SfM result of JOB, which must have ended with its SfM stage succeeded. SfM runs again only when "
            "--options changes an sfm option. Prints the run's job id; the original job's files stay."
        ),
    )
    p.add_argument("job", help="the finished job to start from")
    p.add_argument(
        "--methods", type=parse_methods, required=True, help="training stages of the run: gs, nerf or gs,nerf"
    )
    p.add_argument(
        "--preset", choices=("preview", "standard", "high"), default=None, help="quality preset (default: the job's)"
    )
    p.add_argument("--options", type=parse_options, default=None, help="per-stage overrides as JSON or @file.json")
    p.add_argument("--name", default=None, help="a label for the run (default: the job's)")
    p.add_argument("--wait", action="store_true", help="follow the run until it ends")
    add_server_arguments(p)
    p.set_defaults(func=cmd_rerun)

    p = subparsers.add_parser("runs", help="list a job's runs with their held-out PSNR, side by side")
    p.add_argument("job", help="the uploaded job or one of its runs")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    add_server_arguments(p)
    p.set_defaults(func=cmd_runs)

    p = subparsers.add_parser("status", help="show a job")
    p.add_argument("job", help="the job id")
    p.add_argument("--json", action="store_true", help="print the job as JSON")
    add_server_arguments(p)
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("wait", help="follow a job with progress bars until it ends")
    p.add_argument("job", help="the job id")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument("-o", "--out", type=Path, default=None, help="then download the artifacts here")
    p.add_argument("--include-input", action="store_true", help="with -o, also download the uploaded video")
    add_server_arguments(p)
    p.set_defaults(func=cmd_wait)

    p = subparsers.add_parser(
        "download",
        help="download a job's artifacts (resumes partial files)",
        description=(
            "Download a job's files into a folder. Exits 0 when it has every file the job produces; when "
            "files are missing (a job still running, or one that ended partial or failed) it says which "
            "and exits non-zero, unless --partial."
        ),
    )
    p.add_argument("job", help="the job id")
    p.add_argument("-o", "--out", type=Path, required=True, help="folder to write the files into")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these artifacts")
    p.add_argument("--partial", action="store_true", help="accept the files there are (exit 0 when some are missing)")
    p.add_argument("--include-input", action="store_true", help="also download the uploaded video (input.*)")
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
