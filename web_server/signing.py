"""Signed, expiring artifact URLs: an HMAC-SHA256 over job id, artifact name and expiry.

Browsers cannot send an ``Authorization`` header with ``<video src>`` or a download link, so the
API hands out ``/v1/jobs/{id}/artifacts/{name}?exp=<unix s>&sig=<hex>``, valid without the header.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime


def signature(secret: str, job_id: str, name: str, exp: int) -> str:
    """The hex HMAC of ``job_id``, ``name`` and ``exp`` under ``secret``."""
    message = f"{job_id}\n{name}\n{exp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_query(secret: str, job_id: str, name: str, now: datetime, ttl_s: int) -> tuple[str, datetime]:
    """The ``exp=…&sig=…`` query string valid for ``ttl_s`` seconds, and its expiry."""
    exp = int(now.timestamp()) + ttl_s
    return f"exp={exp}&sig={signature(secret, job_id, name, exp)}", datetime.fromtimestamp(exp, UTC)


def verify(secret: str, job_id: str, name: str, exp: int, sig: str, now: datetime) -> bool:
    """Whether ``sig`` signs this job, name and expiry, and the expiry is in the future.

    ``sig`` is whatever the query string held: compared as UTF-8 bytes, since ``hmac.compare_digest``
    refuses ``str`` arguments with non-ASCII characters.
    """
    if exp < now.timestamp():
        return False
    return hmac.compare_digest(signature(secret, job_id, name, exp).encode(), sig.encode("utf-8", "surrogatepass"))
