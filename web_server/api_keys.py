"""API keys: random tokens shown once, stored as their SHA-256.

A token looks like ``v2s_<key id>_<secret>``; only ``sha256(token)`` is stored, so a leaked
database does not leak usable keys. Each key also has a webhook secret (``whsec_...``) that signs
the webhooks of the jobs it creates; the server must hold it to sign, so it is stored as is.
"""

from __future__ import annotations

import hashlib
import secrets

from web_server.models import StoredApiKey
from web_server.store import Store, utcnow

TOKEN_PREFIX = "v2s_"
WEBHOOK_SECRET_PREFIX = "whsec_"


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_webhook_secret() -> str:
    """A fresh webhook secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return f"{WEBHOOK_SECRET_PREFIX}{secrets.token_urlsafe(32)}"


def create_key(store: Store, owner: str) -> tuple[StoredApiKey, str]:
    """Create a key for ``owner``, with a webhook secret (read it with :meth:`Store.webhook_secret`).

    Returns:
        The stored key and the token (shown once; it cannot be recovered later).
    """
    if not owner.strip():
        raise ValueError("an API key needs a non-empty owner")
    key_id = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    key = StoredApiKey(
        id=key_id,
        owner=owner.strip(),
        token_sha256=hash_token(token),
        created_at=utcnow(),
        webhook_secret=new_webhook_secret(),
    )
    store.insert_api_key(key)
    return key, token


def list_keys(store: Store, owner: str | None = None) -> list[StoredApiKey]:
    """All keys (of ``owner`` when given), oldest first."""
    return store.list_api_keys(owner)


def revoke_key(store: Store, key_id: str) -> bool:
    """Revoke a key by id; returns whether a live key was revoked."""
    return store.revoke_api_key(key_id, utcnow())


def owner_for_token(store: Store, token: str) -> str | None:
    """The owner of a live key, or None."""
    key = store.live_api_key(hash_token(token))
    return key.owner if key else None


def rotate_webhook_secret(store: Store, key_id: str) -> str | None:
    """Give a key a new webhook secret; every delivery attempt from now on is signed with it.

    Returns:
        The new secret, or None when there is no such key.
    """
    secret = new_webhook_secret()
    return secret if store.set_webhook_secret(key_id, secret) else None


def key_id_for_token(store: Store, token: str) -> str | None:
    """The id of a live key, or None."""
    key = store.live_api_key(hash_token(token))
    return key.id if key else None
