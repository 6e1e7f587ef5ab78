"""A per-owner limit on uploads in flight: one more is answered 429 ``TOO_MANY_UPLOADS`` before its body is read."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

from shared.errors import ErrorCode
from web_server.problems import ApiError

#: What ``Retry-After`` tells a refused client to wait, in seconds.
RETRY_AFTER_S = 5


class UploadSlots:
    """Counts each owner's uploads in flight in this server process (thread-safe).

    Args:
        limit: the most uploads one owner may have in flight at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()

    def active(self, owner: str) -> int:
        """How many uploads ``owner`` has in flight."""
        with self._lock:
            return self._active[owner]

    @contextlib.contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        """Hold one of ``owner``'s slots for the duration of the block.

        Raises:
            ApiError: 429 ``TOO_MANY_UPLOADS`` with ``Retry-After`` when all of them are taken.
        """
        with self._lock:
            if self._active[owner] >= self.limit:
                raise ApiError(
                    429,
                    ErrorCode.TOO_MANY_UPLOADS.value,
                    f"This API key already has {self.limit} uploads in progress, the most allowed at once. Wait for "
                    f"one to finish, then send this one again.",
                    headers={"Retry-After": str(RETRY_AFTER_S), "Connection": "close"},
                )
            self._active[owner] += 1
        try:
            yield
        finally:
            with self._lock:
                self._active[owner] -= 1
                if self._active[owner] <= 0:
                    del self._active[owner]
