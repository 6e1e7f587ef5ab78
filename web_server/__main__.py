"""``python -m web_server``: serve the API (host and port from settings), or run an admin command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from web_server import admin_cli


def _serve(_args: argparse.Namespace) -> int:
    import uvicorn

    from shared.settings import Settings
    from web_server.app import create_app

    try:
        settings = Settings()
        app = create_app(settings)
    except ValueError as exc:  # pydantic's ValidationError too: a bad or missing VID2SCENE_* variable
        logging.getLogger("web_server").error("invalid settings: %s", exc)
        return 2
    uvicorn.run(app, host=settings.host, port=settings.port, proxy_headers=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m web_server", description="The vid2scene web server.")
    parser.set_defaults(func=_serve)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="serve the API (the default)")
    serve.set_defaults(func=_serve)
    admin_cli.register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
