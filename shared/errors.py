"""The closed set of stage error codes and the typed errors that carry them.

A stage raises :class:`StageError` (or :class:`Cancelled`); only entry points (the worker consumer,
the CLI) turn errors into job states or exit codes. Whether a failure is worth retrying is a
property of its code, declared once in :data:`RETRYABLE`.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a stage failed. Part of the public API: never rename a member."""

    INVALID_VIDEO = "INVALID_VIDEO"
    VIDEO_TOO_SHORT = "VIDEO_TOO_SHORT"
    VIDEO_TOO_LARGE = "VIDEO_TOO_LARGE"
    INVALID_OPTIONS = "INVALID_OPTIONS"
    INVALID_SCENE = "INVALID_SCENE"
    TOO_FEW_FRAMES_REGISTERED = "TOO_FEW_FRAMES_REGISTERED"
    SFM_FAILED = "SFM_FAILED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    TRAINING_DIVERGED = "TRAINING_DIVERGED"
    CUDA_UNAVAILABLE = "CUDA_UNAVAILABLE"
    WORKER_LOST = "WORKER_LOST"
    SERVER_UNREACHABLE = "SERVER_UNREACHABLE"
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"


#: Codes whose failures may succeed when tried again (on another worker, later). Everything else is
#: permanent: the same input would fail the same way.
RETRYABLE: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.OUT_OF_MEMORY,
        ErrorCode.WORKER_LOST,
        ErrorCode.SERVER_UNREACHABLE,
        ErrorCode.INTERNAL,
    }
)

#: What a user can do about each code, appended to messages that do not already say it.
HINTS: dict[ErrorCode, str] = {
    ErrorCode.INVALID_VIDEO: "Upload an MP4, MOV, MKV or WebM video (H.264, HEVC, VP9 or AV1).",
    ErrorCode.VIDEO_TOO_SHORT: "Film a few seconds while walking slowly around the subject.",
    ErrorCode.VIDEO_TOO_LARGE: "Trim the video or lower its resolution, then upload it again.",
    ErrorCode.INVALID_OPTIONS: "Check the option names and values against the API documentation.",
    ErrorCode.INVALID_SCENE: "Run structure from motion again to rebuild the scene.",
    ErrorCode.TOO_FEW_FRAMES_REGISTERED: (
        "Walk around the object instead of turning on the spot, keep it in view, and avoid blur."
    ),
    ErrorCode.SFM_FAILED: "Try a video with more texture and slower, steadier motion.",
    ErrorCode.OUT_OF_MEMORY: "Try the 'preview' preset or a shorter video.",
    ErrorCode.TRAINING_DIVERGED: "Try again with the 'standard' preset or fewer iterations.",
    ErrorCode.CUDA_UNAVAILABLE: "Run with device 'cpu' or 'auto'.",
    ErrorCode.WORKER_LOST: "The job will be retried automatically; if it keeps failing, contact the operator.",
    ErrorCode.SERVER_UNREACHABLE: "The job will be retried automatically.",
    ErrorCode.CANCELLED: "Submit the video again to start over.",
    ErrorCode.INTERNAL: "This is a bug in vid2scene; the job will be retried automatically.",
}


class StageError(Exception):
    """A stage failure with a stable code, a message a user can act on, and its retryability.

    Args:
        code: the error code.
        message: what happened and what to try, in words a user understands.
        retryable: whether trying again may help; defaults to the code's entry in :data:`RETRYABLE`.
        details: machine-readable context (counts, sizes) stored with the error.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.retryable = (self.code in RETRYABLE) if retryable is None else retryable
        self.details = dict(details or {})

    def to_dict(self) -> dict[str, object]:
        """The error as stored on a stage and shown by the API: ``{code, message, retryable}``."""
        out: dict[str, object] = {"code": self.code.value, "message": self.message, "retryable": self.retryable}
        if self.details:
            out["details"] = self.details
        return out

    def __repr__(self) -> str:
        return f"StageError({self.code.value}, {self.message!r}, retryable={self.retryable})"


class Cancelled(StageError):  # noqa: N818 - the architecture names it `Cancelled`
    """Raised by ``on_progress`` when the job was cancelled; stages let it propagate."""

    def __init__(self, message: str = "The job was cancelled.") -> None:
        super().__init__(ErrorCode.CANCELLED, message, retryable=False)
