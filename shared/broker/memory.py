"""An in-process broker with RabbitMQ's semantics, for the local mode and unit tests.

Queues live in memory (nothing survives the process). Publishing, prefetch 1, requeue with
``redelivered=True``, dead letters and their inspection behave as in :mod:`shared.broker.rabbitmq`.
Thread-safe: the web server publishes and any number of consumer threads consume from one object.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from shared.broker.base import Broker, BrokerError, Delivery, Handler
from shared.messages import STAGES, StageName

log = logging.getLogger(__name__)

_POLL_S = 0.1


@dataclass(frozen=True)
class _Message:
    body: bytes
    message_id: str | None
    redelivered: bool = False


class _MemoryDelivery(Delivery):
    def __init__(self, broker: MemoryBroker, stage: StageName, message: _Message) -> None:
        super().__init__(stage, message.body, message.message_id, message.redelivered)
        self._broker = broker
        self._message = message

    def _ack(self) -> None:
        self._broker._settled()

    def _requeue(self) -> None:
        self._broker._put_back(self.stage, self._message)

    def _dead_letter(self) -> None:
        self._broker._to_dead_letters(self.stage, self._message)


class MemoryBroker(Broker):
    """Stage queues in this process's memory.

    Args:
        prefix: prepended to queue names (kept for parity with RabbitMQ; queues are private anyway).
    """

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self._cond = threading.Condition()
        self._queues: dict[str, deque[_Message]] = {}
        self._dead: dict[str, deque[_Message]] = {}
        self._closed = False

    def declare(self, stages: tuple[StageName, ...] = STAGES) -> None:
        """Create the stage queues and their dead-letter queues (idempotent)."""
        with self._cond:
            for stage in stages:
                self._queues.setdefault(self.queue(stage), deque())
                self._dead.setdefault(self.dead_letter_queue(stage), deque())

    def publish(self, stage: StageName, body: bytes, *, message_id: str) -> None:
        """Append a message to a stage's queue. Raises :class:`BrokerError` if it was not declared."""
        with self._cond:
            self._check_open()
            self._queue(stage).append(_Message(bytes(body), message_id))
            self._cond.notify_all()

    def consume(self, stage: StageName, handler: Handler, *, stop: threading.Event) -> None:
        """Deliver a stage's messages to ``handler`` one at a time until ``stop`` is set (blocks).

        Declares the stage's queues first; runs the handler on the calling thread.
        """
        self.declare((stage,))
        while not stop.is_set():
            message = self._take(stage, stop)
            if message is None:
                continue
            delivery = _MemoryDelivery(self, stage, message)
            try:
                handler(delivery)
            except Exception:
                log.exception("handler failed on message %s of %s", message.message_id, self.queue(stage))
                if not delivery.settled:
                    delivery.reject_to_dead_letter()
                continue
            if not delivery.settled:
                # The consumer went away without settling: the message goes back, marked redelivered.
                delivery.requeue()

    def message_count(self, stage: StageName) -> int:
        """How many messages wait in a stage's queue (deliveries in progress not counted)."""
        with self._cond:
            return len(self._queue(stage))

    def drain_dead_letters(self, stage: StageName) -> list[bytes]:
        """Remove and return the bodies in a stage's dead-letter queue, oldest first."""
        with self._cond:
            dead = self._dead.get(self.dead_letter_queue(stage))
            if dead is None:
                raise BrokerError(f"queue {self.dead_letter_queue(stage)} was never declared")
            bodies = [m.body for m in dead]
            dead.clear()
            return bodies

    def ready(self) -> bool:
        """In-process: ready until closed."""
        return not self._closed

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Refuse further publishes; waiting consumers keep polling until their ``stop`` is set."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # --- internals ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError("the broker is closed")

    def _queue(self, stage: StageName) -> deque[_Message]:
        queue = self._queues.get(self.queue(stage))
        if queue is None:
            raise BrokerError(f"queue {self.queue(stage)} was never declared")
        return queue

    def _take(self, stage: StageName, stop: threading.Event) -> _Message | None:
        with self._cond:
            queue = self._queue(stage)
            if not queue:
                self._cond.wait(_POLL_S)
            if stop.is_set() or not queue:
                return None
            return queue.popleft()

    def _settled(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _put_back(self, stage: StageName, message: _Message) -> None:
        with self._cond:
            self._queue(stage).appendleft(_Message(message.body, message.message_id, redelivered=True))
            self._cond.notify_all()

    def _to_dead_letters(self, stage: StageName, message: _Message) -> None:
        with self._cond:
            self._dead[self.dead_letter_queue(stage)].append(_Message(message.body, message.message_id))
            self._cond.notify_all()
