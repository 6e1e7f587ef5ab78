"""The broker interface: durable stage queues with dead letters, confirmed publishes, one-at-a-time consumers.

Two implementations share these semantics (and one test suite): :mod:`shared.broker.rabbitmq` over
pika for the service, :mod:`shared.broker.memory` in-process for the local mode and unit tests.

Semantics every implementation keeps:

- **Topology.** A direct exchange; per stage a queue ``<prefix>stage.<stage>`` and its dead-letter
  queue ``<prefix>stage.<stage>.dead``. :meth:`Broker.declare` is idempotent.
- **Publish** returns only once the broker holds the message (publisher confirm); messages are
  persistent.
- **Consume** delivers one message at a time per consumer (prefetch 1): the next message arrives
  only after the previous one was settled. The handler runs off the broker's I/O thread, so it may
  take hours; it settles the delivery exactly once with :meth:`Delivery.ack`,
  :meth:`Delivery.requeue` or :meth:`Delivery.reject_to_dead_letter`, from any thread.
- A delivery left unsettled when its consumer goes away (the handler returned without settling,
  the consumer stopped, the connection died) goes back to its queue and is delivered again with
  ``redelivered=True``. An exception escaping the handler dead-letters an unsettled delivery, so a
  handler bug never loops a message forever.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

from shared.messages import STAGES, StageName, queue_name

#: Name of the direct exchange every stage queue is bound to (before the prefix).
EXCHANGE = "vid2scene"

#: Suffix of a stage queue's dead-letter queue.
DEAD_LETTER_SUFFIX = ".dead"


def stage_queue(stage: StageName, prefix: str = "") -> str:
    """The queue (and routing key) of a stage's requests: ``<prefix>stage.<stage>``."""
    return f"{prefix}{queue_name(stage)}"


def dead_letter_queue(stage: StageName, prefix: str = "") -> str:
    """The queue that collects a stage's rejected messages: ``<prefix>stage.<stage>.dead``."""
    return stage_queue(stage, prefix) + DEAD_LETTER_SUFFIX


class BrokerError(Exception):
    """The broker could not do what was asked (unreachable past the retry budget, unroutable, refused)."""


class DeliverySettledError(BrokerError):
    """A delivery was settled twice (acked after it was rejected, ...)."""


class Delivery(ABC):
    """One message handed to a consumer's handler.

    Attributes:
        stage: the stage whose queue the message came from.
        body: the message bytes as published.
        message_id: the id given to :meth:`Broker.publish` (``None`` if the publisher set none).
        redelivered: the broker delivered this message before to a consumer that never settled it.
    """

    def __init__(self, stage: StageName, body: bytes, message_id: str | None, redelivered: bool) -> None:
        self.stage = stage
        self.body = body
        self.message_id = message_id
        self.redelivered = redelivered
        self._settle_lock = threading.Lock()
        self._settled: str | None = None

    @property
    def settled(self) -> bool:
        """Whether :meth:`ack`, :meth:`requeue` or :meth:`reject_to_dead_letter` was called."""
        return self._settled is not None

    def _mark(self, how: str) -> None:
        with self._settle_lock:
            if self._settled is not None:
                raise DeliverySettledError(f"delivery {self.message_id} was already settled ({self._settled})")
            self._settled = how

    def ack(self) -> None:
        """Remove the message from its queue: it was handled (or is to be dropped)."""
        self._mark("ack")
        self._ack()

    def requeue(self) -> None:
        """Give the message back to its queue; it is delivered again with ``redelivered=True``."""
        self._mark("requeue")
        self._requeue()

    def reject_to_dead_letter(self) -> None:
        """Move the message to the stage's dead-letter queue (it can never be handled)."""
        self._mark("dead-letter")
        self._dead_letter()

    @abstractmethod
    def _ack(self) -> None: ...

    @abstractmethod
    def _requeue(self) -> None: ...

    @abstractmethod
    def _dead_letter(self) -> None: ...


#: A consumer's handler: called once per delivery, off the broker's I/O thread.
Handler = Callable[[Delivery], None]


class Broker(ABC):
    """Stage queues: publish requests, consume them one at a time, inspect dead letters.

    One ``Broker`` object may be shared by threads: :meth:`publish` is serialised internally and
    every :meth:`consume` call serves its own consumer (its own connection, for RabbitMQ).

    Args:
        prefix: prepended to the exchange and queue names (tests use a unique one per test).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    @property
    def exchange(self) -> str:
        """The direct exchange's name."""
        return f"{self.prefix}{EXCHANGE}"

    def queue(self, stage: StageName) -> str:
        """The stage's request queue."""
        return stage_queue(stage, self.prefix)

    def dead_letter_queue(self, stage: StageName) -> str:
        """The stage's dead-letter queue."""
        return dead_letter_queue(stage, self.prefix)

    @abstractmethod
    def declare(self, stages: tuple[StageName, ...] = STAGES) -> None:
        """Create the exchange, the stage queues and their dead-letter queues (idempotent)."""

    @abstractmethod
    def publish(self, stage: StageName, body: bytes, *, message_id: str) -> None:
        """Put a persistent message on a stage's queue; returns once the broker confirmed it.

        Raises:
            BrokerError: the broker stayed unreachable, or the message could not be routed.
        """

    @abstractmethod
    def consume(self, stage: StageName, handler: Handler, *, stop: threading.Event) -> None:
        """Deliver a stage's messages to ``handler`` one at a time until ``stop`` is set.

        Declares the stage's queues first (idempotent). Blocks. Survives connection loss (reconnects
        with backoff). When ``stop`` is set, no new message is taken; the call waits for the running
        handler to return, then gives an unsettled delivery back to the queue and returns.
        """

    @abstractmethod
    def message_count(self, stage: StageName) -> int:
        """How many messages wait (unacknowledged deliveries not counted) in a stage's queue."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether the broker answers now (one try, no waiting for a reconnect): a readiness check."""

    @abstractmethod
    def drain_dead_letters(self, stage: StageName) -> list[bytes]:
        """Remove and return the bodies in a stage's dead-letter queue, oldest first."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Running :meth:`consume` calls must have been stopped first."""

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
