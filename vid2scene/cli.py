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


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="vid2scene", description="Turn a phone video into a 3D scene.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a role installed without this part
            if exc.name and name.startswith(exc.name.split(".")[0]):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
