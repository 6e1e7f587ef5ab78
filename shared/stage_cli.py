"""What the stage sub-commands (``vid2scene sfm``, ``train-gs``, ``train-nerf``) share: a progress bar
around a stage function, and one way to report its typed failure."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from shared.errors import StageError
from shared.progress import ProgressFn

#: Exit code of a stage sub-command for a typed stage failure or invalid options.
EXIT_STAGE_ERROR = 2

_T = TypeVar("_T")

_STEPS = 1000
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {postfix}"


def run_with_progress_bar(command: str, label: str, stage: Callable[[ProgressFn], _T]) -> _T | None:
    """Run ``stage(on_progress)`` under a terminal progress bar (on stderr).

    Args:
        command: the sub-command, for the error line (``"train-gs"``).
        label: the bar's label (``"gs"``).
        stage: the stage function with everything but its progress callback bound.

    Returns:
        The stage's result, or None after a :class:`~shared.errors.StageError`, which is printed to
        stderr as ``vid2scene <command>: <CODE>: <message>`` (exit with :data:`EXIT_STAGE_ERROR`).
        Any other exception propagates.
    """
    from tqdm import tqdm

    with tqdm(total=_STEPS, desc=label, bar_format=_BAR_FORMAT) as bar:

        def on_progress(fraction: float, message: str) -> None:
            bar.n = round(min(max(fraction, 0.0), 1.0) * _STEPS)
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        try:
            return stage(on_progress)
        except StageError as exc:
            bar.close()
            print(f"vid2scene {command}: {exc.code.value}: {exc.message}", file=sys.stderr)
            return None
