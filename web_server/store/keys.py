"""The ``api_keys`` collection: keys stored as the SHA-256 of their token."""

from __future__ import annotations

from datetime import datetime

from web_server.models import StoredApiKey
from web_server.store.base import Collections, to_document


class KeyQueries(Collections):
    """The ``api_keys`` collection's reads and writes."""

    def insert_api_key(self, key: StoredApiKey) -> None:
        """Store a new key (raises ``DuplicateKeyError`` when its id or token hash is taken)."""
        self.api_keys.insert_one(to_document(key))

    def list_api_keys(self, owner: str | None = None) -> list[StoredApiKey]:
        """All keys (of ``owner`` when given), oldest first."""
        query = {"owner": owner} if owner else {}
        return [StoredApiKey.model_validate(d) for d in self.api_keys.find(query).sort("created_at", 1)]

    def revoke_api_key(self, key_id: str, now: datetime) -> bool:
        """Revoke a live key by id; returns whether one was revoked (False: unknown or already revoked)."""
        res = self.api_keys.update_one({"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now}})
        return res.modified_count == 1

    def live_api_key(self, token_sha256: str) -> StoredApiKey | None:
        """The live (not revoked) key with this token hash, or None."""
        doc = self.api_keys.find_one({"token_sha256": token_sha256, "revoked_at": None})
        return StoredApiKey.model_validate(doc) if doc else None
