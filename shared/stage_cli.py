"""What the stage sub-commands (``vid2scene sfm``, ``train-gs``, ``train-nerf``) share: a progress bar
around a stage function, one way to report its typed failure as an exit code, the one preset chooser,
and the one builder of the training commands (:func:`add_training_command`)."""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from shared.device import device_class
from shared.errors import ErrorCode, StageError
from shared.exit_codes import ExitCode, exit_code_for_error
from shared.messages import StageName
from shared.options import OPTIONS_BY_STAGE
from shared.options.base import PRESET_NAMES, PresetName, default_preset_for
from shared.progress import ProgressFn
from shared.settings import Device
from shared.stage_handler import TrainStageFn

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


def choose_preset(command: str, requested: PresetName | None, device: Device) -> PresetName:
    """The preset a command runs: the one asked for, else the device's (:func:`shared.options.base.default_preset_for`).

    The one chooser of ``vid2scene run`` and the ``train-*`` commands; the server's default
    (``GET /v1/capabilities``) applies the same rule to its training workers' device.

    Args:
        command: the sub-command, for the notice on stderr.
        requested: the ``--preset`` given, or None.
        device: the ``--device`` given (``auto``, ``cpu`` or ``cuda``; :func:`shared.device.device_class`).

    Returns:
        The preset name; a notice on stderr says which was chosen, and why, when none was asked for.
    """
    if requested is not None:
        return requested
    preset, reason = default_preset_for(device_class(device))
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


@dataclass(frozen=True)
class OptionFlag:
    """A training command's own flag that sets one stage option (``--depth-weight W`` → ``depth_weight``).

    Attributes:
        flag: the flag (``"--depth-weight"``).
        option: the stage option it sets (``"depth_weight"``).
        type: converts the flag's value.
        metavar: the value's name in the help.
        help: the help line.
    """

    flag: str
    option: str
    type: Callable[[str], object]
    metavar: str
    help: str


@dataclass(frozen=True)
class TrainingCommand:
    """A ``vid2scene train-<stage>`` sub-command.

    Attributes:
        name: the sub-command (``"train-gs"``).
        stage: the stage it runs (its options are ``shared.options.OPTIONS_BY_STAGE[stage]``, its
            progress bar is labelled with it).
        train: the stage function as ``"module:function"``, imported only when the command runs
            (it brings in torch).
        help: the one-line help.
        description: the help's description.
        flags: the command's own option flags, beyond :func:`add_training_arguments`.
    """

    name: str
    stage: StageName
    train: str
    help: str
    description: str
    flags: tuple[OptionFlag, ...] = ()

    def load_train(self) -> TrainStageFn:
        """Import the stage function named by :attr:`train`."""
        module, _, function = self.train.partition(":")
        fn: TrainStageFn = getattr(importlib.import_module(module), function)
        return fn


def add_training_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], command: TrainingCommand
) -> None:
    """Add a training sub-command: :func:`add_training_arguments`, its own flags, and :func:`run_training`."""
    parser = subparsers.add_parser(command.name, help=command.help, description=command.description)
    add_training_arguments(parser)
    for flag in command.flags:
        parser.add_argument(
            flag.flag, dest=flag.option, type=flag.type, default=None, metavar=flag.metavar, help=flag.help
        )
    parser.set_defaults(func=stage_command(command.name)(functools.partial(run_training, command)))


def run_training(command: TrainingCommand, args: argparse.Namespace) -> int:
    """Run a training command for parsed ``args`` under a progress bar; print its metrics as JSON.

    The preset is ``--preset`` or the device's (:func:`choose_preset`); ``--device``, ``--iterations``,
    ``--seed``, the command's own flags and every ``--set NAME=VALUE`` override it.

    Returns:
        ``ExitCode.OK``; a failure raises :class:`~shared.errors.StageError` (``INVALID_OPTIONS`` for
        options that do not validate), which :func:`stage_command` turns into the exit code.
    """
    preset = choose_preset(command.name, args.preset, args.device)
    names = ("device", "iterations", "seed", *(flag.option for flag in command.flags))
    overrides: dict[str, object] = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        overrides.update(parse_set_options(args.set))
        options = OPTIONS_BY_STAGE[command.stage].from_preset(preset, **overrides)
    except ValueError as exc:
        raise invalid_options(exc) from exc

    train = command.load_train()
    result = run_with_progress_bar(command.stage, functools.partial(train, args.scene_dir, args.out, options))
    metrics = result.metrics.model_dump(mode="json", exclude={"heldout_per_frame"})
    print(json.dumps({"out_dir": str(result.out_dir), **metrics}, indent=2))
    return ExitCode.OK
