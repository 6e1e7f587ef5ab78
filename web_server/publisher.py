"""What the orchestrator needs of a broker: publishing a stage request.

Every ``shared.broker.Broker`` satisfies :class:`StagePublisher`.
"""

from __future__ import annotations

from typing import Protocol

from shared.messages import StageName


class StagePublisher(Protocol):
    """Publishes one message to a stage's queue."""

    def publish(self, stage: StageName, body: bytes, *, message_id: str) -> None:
        """Publish ``body`` to the queue of ``stage``; raises when the broker did not accept it."""
        ...
