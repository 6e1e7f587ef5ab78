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
    VIDEO_TOO_LONG = "VIDEO_TOO_LONG"
    INVALID_OPTIONS = "INVALID_OPTIONS"
    INVALID_SCENE = "INVALID_SCENE"
    TOO_FEW_FRAMES_REGISTERED = "TOO_FEW_FRAMES_REGISTERED"
    SFM_FAILED = "SFM_FAILED"
    POOR_CAPTURE = "POOR_CAPTURE"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    TRAINING_DIVERGED = "TRAINING_DIVERGED"
    CUDA_UNAVAILABLE = "CUDA_UNAVAILABLE"
    WORKER_LOST = "WORKER_LOST"
    SERVER_UNREACHABLE = "SERVER_UNREACHABLE"
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"
    #: The web server cannot reach MongoDB (answered 503 with ``Retry-After``); not a stage failure.
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    # Refusals of an upload request by the API (never a stage's failure).
    UPLOAD_TIMEOUT = "UPLOAD_TIMEOUT"
    TOO_MANY_UPLOADS = "TOO_MANY_UPLOADS"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


#: Codes whose failures may succeed when tried again (on another worker, later). Everything else is
#: permanent: the same input would fail the same way.
RETRYABLE: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.OUT_OF_MEMORY,
        ErrorCode.WORKER_LOST,
        ErrorCode.SERVER_UNREACHABLE,
        ErrorCode.INTERNAL,
        ErrorCode.STORE_UNAVAILABLE,
    }
)


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

    def __repr__(self) -> str:
        return f"StageError({self.code.value}, {self.message!r}, retryable={self.retryable})"


class Cancelled(StageError):  # noqa: N818 - the architecture names it `Cancelled`
    """Raised by ``on_progress`` when the job was cancelled; stages let it propagate."""

    def __init__(self, message: str = "The job was cancelled.") -> None:
        super().__init__(ErrorCode.CANCELLED, message, retryable=False)
