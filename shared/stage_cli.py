"""What the stage sub-commands (``vid2scene sfm``, ``train-gs``, ``train-nerf``) share: a progress bar
around a stage function, and one way to report its typed failure as an exit code."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from shared.errors import ErrorCode, StageError
from shared.exit_codes import exit_code_for_error
from shared.options.base import PRESET_NAMES, PresetName, default_preset_for
from shared.progress import ProgressFn

_T = TypeVar("_T")

_STEPS = 1000
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {postfix}"

StageCommandFn = Callable[[argparse.Namespace], int]


def stage_command(command: str) -> Callable[[StageCommandFn], StageCommandFn]:
    """Decorate a stage sub-command's ``run(args)``: a :class:`~shared.errors.StageError` it raises is
    printed to stderr as ``vid2scene <command>: <CODE>: <message>`` and becomes the exit code that
    :func:`shared.exit_codes.exit_code_for_error` gives its code (1 for an unusable input or options,
    3 for a stage that ran and failed).

    Args:
        command: the sub-command, for the error line (``"train-gs"``).
    """

    def decorate(fn: StageCommandFn) -> StageCommandFn:
        @functools.wraps(fn)
        def wrapper(args: argparse.Namespace) -> int:
            try:
                return fn(args)
            except StageError as exc:
                print(f"vid2scene {command}: {exc.code.value}: {exc.message}", file=sys.stderr)
                return exit_code_for_error(exc.code)

        return wrapper

    return decorate


def invalid_options(exc: ValueError) -> StageError:
    """The ``INVALID_OPTIONS`` error of options that did not validate (raise it from ``exc``)."""
    return StageError(ErrorCode.INVALID_OPTIONS, f"invalid options: {exc}")


def run_with_progress_bar(label: str, stage: Callable[[ProgressFn], _T]) -> _T:
    """Run ``stage(on_progress)`` under a terminal progress bar (on stderr).

    Args:
        label: the bar's label (``"gs"``).
        stage: the stage function with everything but its progress callback bound.

    Returns:
        The stage's result. Its exceptions propagate, after the bar is closed.
    """
    from tqdm import tqdm

    with tqdm(total=_STEPS, desc=label, bar_format=_BAR_FORMAT) as bar:

        def on_progress(fraction: float, message: str) -> None:
            bar.n = round(min(max(fraction, 0.0), 1.0) * _STEPS)
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        return stage(on_progress)


def default_preset(command: str, requested: PresetName | None, device: str) -> PresetName:
    """The training preset to use: the one asked for, else the device's (:func:`shared.options.base.default_preset_for`).

    Args:
        command: the sub-command, for the notice on stderr.
        requested: the ``--preset`` given, or None.
        device: the ``--device`` given (``auto``, ``cpu`` or ``cuda``).

    Returns:
        The preset name; a notice says which was chosen when none was asked for.
    """
    if requested is not None:
        return requested
    cuda = device == "cuda"
    if device == "auto":
        import torch  # only the training stages call this, and they have torch

        cuda = bool(torch.cuda.is_available())
    preset, reason = default_preset_for("cuda" if cuda else "cpu")
    print(f"vid2scene {command}: {reason}; pass --preset to choose", file=sys.stderr)
    return preset


def parse_set_options(items: list[str]) -> dict[str, str]:
    """``--set NAME=VALUE`` arguments as option overrides (pydantic converts the values).

    Raises:
        ValueError: an item is not of the form ``NAME=VALUE``.
    """
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value.strip()
    return overrides


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments every training sub-command takes: ``SCENE_DIR``, ``-o/--out``, ``--preset``,
    ``--device``, ``--iterations``, ``--seed`` and the repeatable ``--set NAME=VALUE``."""
    parser.add_argument("scene_dir", type=Path, metavar="SCENE_DIR", help="a scene directory from `vid2scene sfm`")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="the output directory")
    parser.add_argument(
        "--preset", choices=PRESET_NAMES, default=None, help="quality preset (default: standard on CUDA, else preview)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="compute device")
    parser.add_argument("--iterations", type=int, default=None, metavar="N", help="training steps (default: preset's)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override any stage option, e.g. --set flythrough_seconds=4 (repeatable)",
    )
