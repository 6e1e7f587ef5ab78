"""Exponential backoff with jitter, for reconnecting to the broker and retrying the worker API."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def backoff_delay_s(failures: int, first_s: float, cap_s: float) -> float:
    """The wait after the ``failures``-th failure in a row: ``first · 2^(failures−1)``, at most ``cap_s``.

    0 when ``first_s`` is 0 or less (no backoff).
    """
    if first_s <= 0:
        return 0.0
    return min(first_s * 2.0 ** max(failures - 1, 0), cap_s)


@dataclass
class Backoff:
    """Delays ``first, 2·first, 4·first, ...`` capped at ``cap``, each with ±``jitter`` relative noise.

    Args:
        first: the first delay in seconds.
        cap: the longest delay in seconds.
        jitter: relative spread of each delay (0.2 → within ±20 %), so that many clients that lost the
            same server do not come back in lockstep.

    Example:
        >>> b = Backoff(first=1.0, cap=4.0, jitter=0.0)
        >>> [b.next_delay() for _ in range(4)]
        [1.0, 2.0, 4.0, 4.0]
    """

    first: float = 0.5
    cap: float = 30.0
    jitter: float = 0.2
    _attempt: int = field(default=0, init=False)

    def next_delay(self) -> float:
        """The delay before the next try; each call doubles the base delay up to ``cap``."""
        base = backoff_delay_s(self._attempt + 1, self.first, self.cap)
        self._attempt += 1
        spread = base * self.jitter
        return max(0.0, base + random.uniform(-spread, spread))

    def reset(self) -> None:
        """Start again from ``first`` (after a success)."""
        self._attempt = 0
