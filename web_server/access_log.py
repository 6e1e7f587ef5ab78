"""Bounded access-log lines: no request field a client controls is logged longer than a few hundred characters.

uvicorn's access logger formats ``'%s - "%s %s HTTP/%s" %d'`` with the client address, the method,
the path with its query and the HTTP version, all as the client sent them; a client can send an
8,000-character method or path on every request. :class:`BoundedAccessLog` shortens each string
argument of such a record before it is formatted.
"""

from __future__ import annotations

import logging
from typing import Final

#: The logger uvicorn writes one line per answered request to.
ACCESS_LOGGER: Final[str] = "uvicorn.access"
#: The longest request field logged as it is; longer ones keep this many characters and a marker.
MAX_FIELD_CHARS: Final[int] = 256


def shorten(value: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``value`` when it has at most ``limit`` characters, else its start and how much was cut."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}…[{len(value) - limit} more characters]"


class BoundedAccessLog(logging.Filter):
    """Shortens every string argument of a log record to :data:`MAX_FIELD_CHARS` (the record is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record.args`` in place; always lets the record through."""
        if isinstance(record.args, tuple):
            record.args = tuple(shorten(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_bounded_access_log() -> None:
    """Attach :class:`BoundedAccessLog` to uvicorn's access logger once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, BoundedAccessLog) for f in logger.filters):
        logger.addFilter(BoundedAccessLog())
