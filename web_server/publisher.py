"""What the server needs of a broker: publishing a stage request (and, optionally, a readiness check).

``shared.broker.make_broker(url)`` returns an object that satisfies :class:`StagePublisher`; tests
and the local mode may pass any object with the same ``publish`` signature.
"""

from __future__ import annotations

from typing import Protocol

from shared.messages import StageName


class StagePublisher(Protocol):
    """Publishes one message to a stage's queue."""

    def publish(self, stage: StageName, body: bytes, *, message_id: str) -> None:
        """Publish ``body`` to the queue of ``stage``; raises when the broker did not accept it."""
        ...


def broker_ready(broker: object) -> bool:
    """Whether the broker is open and answers a cheap call: ``ping()``, else ``message_count("sfm")``.

    A publisher with neither is in-process (it cannot be unreachable) and counts as ready.
    """
    if getattr(broker, "closed", False) is True:
        return False
    ping = getattr(broker, "ping", None)
    count = getattr(broker, "message_count", None)
    try:
        if callable(ping):
            return ping() is not False
        if callable(count):
            count("sfm")
    except Exception:
        return False
    return True
