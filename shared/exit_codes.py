"""The exit codes of every ``vid2scene`` command, and the one rule that maps an outcome to them.

The client commands (``submit``, ``wait``, ``download``, ...), the local mode (``run``, ``demo``,
``serve``), the stage commands (``sfm``, ``train-gs``, ``train-nerf``) and the admin commands
(``keys``) all return one of :class:`ExitCode`. A stage error code means the same exit code
wherever it is met: refused by the server at upload, found by a local probe, or raised by a stage.
The table for users is in ``docs/cli.md``.
"""

from __future__ import annotations

from enum import IntEnum

from shared.errors import ErrorCode


class ExitCode(IntEnum):
    """What a ``vid2scene`` command's exit status means."""

    OK = 0
    #: Nothing was done: bad arguments, an unusable input (see :data:`INPUT_ERRORS`), an API error
    #: (``NOT_FOUND``, ``UNAUTHORIZED``, ...) or an unreachable server. The message says what to fix.
    ERROR = 1
    #: Part of the result: a job that ended ``partial``, or a download that lacks files the job has
    #: not (yet) produced.
    PARTIAL = 2
    #: The work ran and failed (a stage error such as ``TOO_FEW_FRAMES_REGISTERED``), or was cancelled.
    FAILED = 3
    #: Stopped by Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it).
    INTERRUPTED = 130


#: Stage error codes that mean the input itself is unusable: the same input fails the same way
#: before any work, so they are :attr:`ExitCode.ERROR` like any other refused request.
INPUT_ERRORS: frozenset[str] = frozenset(
    {
        ErrorCode.INVALID_VIDEO,
        ErrorCode.VIDEO_TOO_LARGE,
        ErrorCode.INVALID_OPTIONS,
        ErrorCode.INVALID_SCENE,
    }
)


def exit_code_for_error(code: str) -> ExitCode:
    """The exit code of a failure with the stable error ``code`` (``INVALID_VIDEO``, ``SFM_FAILED``, ...)."""
    return ExitCode.ERROR if code in INPUT_ERRORS else ExitCode.FAILED


def exit_code_for_job(status: str, error_code: str | None = None) -> ExitCode:
    """The exit code of a job that ended with ``status``.

    Args:
        status: ``succeeded``, ``partial``, ``failed`` or ``cancelled``.
        error_code: the code of the error that failed the job, when it has one.
    """
    if status == "succeeded":
        return ExitCode.OK
    if status == "partial":
        return ExitCode.PARTIAL
    if status == "failed" and error_code is not None:
        return exit_code_for_error(error_code)
    return ExitCode.FAILED
