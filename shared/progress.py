"""Progress reporting for stage functions.

``on_progress(fraction, message)`` is how a stage reports progress, and also its cancellation
point: the callback raises :class:`shared.errors.Cancelled` when the job was cancelled.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores everything (the default for library calls)."""


def sub_progress(on_progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """Map a step's own 0–1 progress onto ``[start, end]`` of the whole stage.

    Args:
        on_progress: the stage's callback.
        start: the stage fraction at which the step begins.
        end: the stage fraction at which the step ends.

    Returns:
        A callback for the step; it forwards (and so propagates cancellation from) ``on_progress``.

    Example:
        >>> seen = []
        >>> step = sub_progress(lambda f, m: seen.append(round(f, 2)), 0.5, 1.0)
        >>> step(0.5, "half")
        >>> seen
        [0.75]
    """

    def step(fraction: float, message: str) -> None:
        clamped = min(max(fraction, 0.0), 1.0)
        on_progress(start + (end - start) * clamped, message)

    return step
