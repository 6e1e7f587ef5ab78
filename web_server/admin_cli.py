"""Admin commands on the key store: ``keys create --owner NAME``, ``keys list``, ``keys revoke KEY_ID``,
``keys rotate-webhook-secret KEY_ID``.

``register(subparsers)`` adds them to any argparse command (``python -m web_server``, ``vid2scene``).
"""

from __future__ import annotations

import argparse
import sys

from shared.exit_codes import ExitCode
from shared.settings import Settings
from web_server.api_keys import create_key, list_keys, revoke_key, rotate_webhook_secret
from web_server.store import Store, connect


def _store() -> Store:
    settings = Settings()
    return Store(connect(settings.mongo_url, settings.mongo_db, timeout_ms=settings.mongo_timeout_ms))


def _create(args: argparse.Namespace) -> int:
    store = _store()
    store.ensure_indexes()
    key, token = create_key(store, args.owner)
    print(f"key {key.id} for {key.owner} (shown once, store it now):", file=sys.stderr)
    print(token)
    print(f"webhook secret (verifies this key's webhooks): {key.webhook_secret}", file=sys.stderr)
    return ExitCode.OK


def _rotate_webhook_secret(args: argparse.Namespace) -> int:
    secret = rotate_webhook_secret(_store(), args.key_id)
    if secret is None:
        print(f"no key {args.key_id}", file=sys.stderr)
        return ExitCode.ERROR
    print(f"new webhook secret of {args.key_id}; deliveries are signed with it from now on:", file=sys.stderr)
    print(secret)
    return ExitCode.OK


def _list(args: argparse.Namespace) -> int:
    for key in list_keys(_store(), args.owner):
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        print(f"{key.id}\t{key.owner}\t{key.created_at.isoformat()}\t{state}")
    return ExitCode.OK


def _revoke(args: argparse.Namespace) -> int:
    if revoke_key(_store(), args.key_id):
        print(f"revoked {args.key_id}", file=sys.stderr)
        return ExitCode.OK
    print(f"no active key {args.key_id}", file=sys.stderr)
    return ExitCode.ERROR


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``keys create|list|revoke|rotate-webhook-secret`` (MongoDB from ``VID2SCENE_MONGO_URL``/``VID2SCENE_MONGO_DB``)."""
    keys = subparsers.add_parser("keys", help="manage API keys", description="Manage the web server's API keys.")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a key and print its token once")
    create.add_argument("--owner", required=True, help="who the key belongs to; jobs are visible per owner")
    create.set_defaults(func=_create)
    listing = sub.add_parser("list", help="list keys (never their tokens)")
    listing.add_argument("--owner", default=None, help="only this owner's keys")
    listing.set_defaults(func=_list)
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id", help="the id shown by 'keys list'")
    revoke.set_defaults(func=_revoke)
    rotate = sub.add_parser(
        "rotate-webhook-secret", help="give a key a new webhook secret and print it (the old one stops working)"
    )
    rotate.add_argument("key_id", help="the id shown by 'keys list'")
    rotate.set_defaults(func=_rotate_webhook_secret)
