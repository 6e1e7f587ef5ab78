"""The ``vid2scene`` command: one sub-command per task, each registered by the package that owns it.

A package that adds commands exposes ``register(subparsers)``, which adds its parsers and sets
``func`` (taking the parsed namespace, returning an exit code) as the parser default.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

from shared.cpu_threads import configure_cpu_threads
from shared.exit_codes import ExitCode
from shared.settings import Settings

#: Modules whose ``register(subparsers)`` adds sub-commands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "vid2scene.local_commands",
    "vid2scene.client_commands",
    "vid2scene.check_command",
    "web_server.admin_cli",
    "sfm_worker.cli",
    "gs_worker.cli",
    "nerf_worker.cli",
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit with ``ExitCode.ERROR`` (argparse's own 2 means
    ``PARTIAL`` in vid2scene's table)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.ERROR, f"{self.prog}: error: {message}\n")


def _add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v/--verbose``, repeatable, before or after the sub-command (``vid2scene -v status J`` or
    ``vid2scene status J -v``); a sub-command's count adds to the top-level one."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        dest="verbose" if top else "sub_verbose",
        help="log more: -v information (every HTTP request, service logs), -vv debugging",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share one parser
                _add_verbosity(sub, top=False)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    parser = _Parser(prog="vid2scene", description="Turn a phone video into a 3D scene.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a role installed without this part
            if exc.name and name.startswith(exc.name.split(".")[0]):
                continue
            raise
        module.register(sub)
    _add_verbosity(parser, top=True)
    return parser


def _threads_setting() -> int | None:
    """``VID2SCENE_THREADS``, or None when unset; invalid settings are left for the sub-command to report."""
    try:
        return Settings().threads
    except ValidationError:
        return None


def log_level(verbose: int) -> int:
    """The terminal's log level for ``-v`` given ``verbose`` times: warnings, then INFO, then DEBUG."""
    return (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a command line; ``verbose`` counts every ``-v``, before and after the sub-command."""
    args = build_parser().parse_args(argv)
    args.verbose += vars(args).pop("sub_verbose", 0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (:class:`shared.exit_codes.ExitCode`)."""
    configure_cpu_threads(_threads_setting())  # before any sub-command imports torch or numba
    args = parse_args(argv)
    logging.basicConfig(level=log_level(args.verbose), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
