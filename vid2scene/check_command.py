"""``vid2scene check VIDEO [--json]``: the capture check on a video, offline, in seconds.

Prints the verdict, the advice and the figures (or the report as JSON with ``--json``). Exit codes
(:class:`shared.exit_codes.ExitCode`): 0 for a ``good`` or ``usable`` capture, 1 for a ``poor`` one,
and 1 as for every unusable input when the file is not a video we read (the ``INVALID_VIDEO`` message
on stderr) or OpenCV is not installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.capture.report import CaptureReport
from shared.errors import StageError
from shared.exit_codes import ExitCode, exit_code_for_error

#: Exit code of a capture judged ``poor``: an input that will not reconstruct well, like any unusable input.
EXIT_POOR = ExitCode.ERROR


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check`` sub-command."""
    parser = subparsers.add_parser(
        "check",
        help="judge a video before uploading it: sharpness, motion, coverage, exposure (seconds)",
        description="Check how well VIDEO will reconstruct: a verdict (good, usable, poor) with advice. "
        "Exit 0 for good or usable, 1 for poor or for a file that is not a usable video.",
    )
    parser.add_argument("video", type=Path, metavar="VIDEO", help="the video to check (MP4, MOV, MKV or WebM)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check ``args.video``; returns the exit code."""
    try:
        from shared.capture.check import check_capture
    except ModuleNotFoundError as exc:
        if exc.name != "cv2":
            raise
        print("vid2scene check: needs OpenCV: pip install 'vid2scene[sfm]'", file=sys.stderr)
        return ExitCode.ERROR
    try:
        report = check_capture(args.video)
    except StageError as exc:
        print(f"vid2scene check: {exc.code.value}: {exc.message}", file=sys.stderr)
        return exit_code_for_error(exc.code.value)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(_text(report))
    return EXIT_POOR if report.verdict == "poor" else ExitCode.OK


def _text(report: CaptureReport) -> str:
    """The report for a terminal: verdict, advice, then one line per aspect."""
    s, m, c, e = report.sharpness, report.motion, report.coverage, report.exposure
    parallax = "not measured" if m.parallax is None else f"{m.parallax:.2f}"
    lines = [
        f"capture: {report.verdict.upper()}",
        *(f"  - {advice}" for advice in report.advice),
        f"video:     {report.duration_s:.1f} s, {report.frame_count} frames; {report.usable_frames} usable "
        f"({report.usable_duration_s:.1f} s), {report.frames_sampled} sampled",
        f"sharpness: {100 * s.blurry_share:.0f} % blurry, longest blurry stretch {s.longest_blurry_s:.1f} s",
        f"motion:    {100 * m.view_change_per_frame:.2f} % of the frame per frame, {m.turn_deg_per_frame:.1f}° "
        f"turned per frame, {100 * m.fast_share:.0f} % too fast; parallax {parallax}"
        + (" (turning in place)" if m.turning_in_place else ""),
        f"coverage:  {c.arc_deg:.0f}° around the subject" + (", closes the loop" if c.closes_loop else ""),
        f"exposure:  {100 * e.overexposed_share:.0f} % over-, {100 * e.underexposed_share:.0f} % under-exposed",
        f"checked in {report.seconds:.1f} s",
    ]
    return "\n".join(lines)
