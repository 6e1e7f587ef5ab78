"""The RabbitMQ broker over pika's ``BlockingConnection``.

Topology: a durable direct exchange ``vid2scene``; per stage a durable queue ``stage.<stage>`` bound
with its own name, whose ``x-dead-letter-exchange`` routes rejected messages to the durable queue
``stage.<stage>.dead``. Messages are persistent (``delivery_mode=2``) and published with publisher
confirms and ``mandatory`` (an unroutable message is an error, not a silent drop).

Consumers: one connection per :meth:`RabbitMQBroker.consume` call, ``prefetch_count=1``. The handler
runs in its own thread while the consuming thread keeps pumping the connection (so heartbeats flow
during hour-long stages); acks are handed back to the connection's thread with
``add_callback_threadsafe``. A lost connection (broker restart, network) is re-opened with backoff;
the unacked message returns to the queue and is redelivered with ``redelivered=True``.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from shared.backoff import Backoff
from shared.broker.base import Broker, BrokerError, Delivery, Handler
from shared.messages import STAGES, StageName

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: How long a consuming thread blocks in pika at a time; bounds how fast ``stop`` is noticed.
_PUMP_S = 0.2

#: The longest a readiness check takes, whatever state the broker is in.
READY_TIMEOUT_S = 1.0

#: How long a readiness check waits for a publish that holds the connection before it answers
#: that publish's last outcome instead.
_READY_LOCK_WAIT_S = 0.2

#: The longest one connection attempt may take (TCP connect, AMQP handshake).
_CONNECT_TIMEOUT_S = 5.0

#: Errors after which a connection (or its channel) is unusable and must be re-opened.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.ConnectionWrongStateError,
    ConnectionError,
    OSError,
)


class _RabbitDelivery(Delivery):
    """A delivery whose settle calls are scheduled onto the connection's own thread."""

    def __init__(
        self,
        connection: BlockingConnection,
        channel: BlockingChannel,
        delivery_tag: int,
        stage: StageName,
        body: bytes,
        message_id: str | None,
        redelivered: bool,
    ) -> None:
        super().__init__(stage, body, message_id, redelivered)
        self._connection = connection
        self._channel = channel
        self._tag = delivery_tag

    def _schedule(self, what: str, call: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                call()
            except _CONNECTION_ERRORS as exc:
                log.warning("%s of message %s lost (%s); the broker will redeliver it", what, self.message_id, exc)

        try:
            self._connection.add_callback_threadsafe(guarded)
        except _CONNECTION_ERRORS as exc:
            log.warning("%s of message %s lost (%s); the broker will redeliver it", what, self.message_id, exc)

    def _ack(self) -> None:
        self._schedule("ack", functools.partial(self._channel.basic_ack, self._tag))

    def _requeue(self) -> None:
        self._schedule("requeue", functools.partial(self._channel.basic_nack, self._tag, requeue=True))

    def _dead_letter(self) -> None:
        self._schedule("dead-letter", functools.partial(self._channel.basic_reject, self._tag, requeue=False))


def _run_handler(handler: Handler, delivery: Delivery, queue: str) -> None:
    """Call ``handler`` and settle what it left unsettled (exception → dead letter, else requeue)."""
    try:
        handler(delivery)
    except Exception:
        log.exception("handler failed on message %s of %s", delivery.message_id, queue)
        if not delivery.settled:
            delivery.reject_to_dead_letter()
        return
    if not delivery.settled:
        delivery.requeue()


class RabbitMQBroker(Broker):
    """Stage queues on a RabbitMQ server.

    Args:
        url: an AMQP URL, e.g. ``amqp://guest:guest@127.0.0.1:5672/%2F?heartbeat=30``.
        prefix: prepended to the exchange and queue names.
        heartbeat_s: the AMQP heartbeat to negotiate; ``None`` keeps the URL's (or the server's).
        publish_retry_s: how long :meth:`publish` (and :meth:`declare`) may take in all, waiting for
            the publishing connection included, before it raises :class:`BrokerError`; a
            connection attempt never takes longer than what is left of it.
        reconnect_cap_s: the longest wait between reconnection attempts of a consumer.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        heartbeat_s: int | None = None,
        publish_retry_s: float = 30.0,
        reconnect_cap_s: float = 10.0,
    ) -> None:
        super().__init__(prefix)
        self._params = pika.URLParameters(url)
        if heartbeat_s is not None:
            self._params.heartbeat = heartbeat_s
        self._params.connection_attempts = 1
        self._params.socket_timeout = _CONNECT_TIMEOUT_S
        self._params.stack_timeout = _CONNECT_TIMEOUT_S
        self._params.blocked_connection_timeout = 60.0
        self._publish_retry_s = publish_retry_s
        self._reconnect_cap_s = reconnect_cap_s
        self._lock = threading.Lock()  # guards the publishing connection
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._healthy = False  # how the last call on the publishing connection went

    # --- publishing side (one shared connection, serialised) -------------------------------------

    def declare(self, stages: tuple[StageName, ...] = STAGES) -> None:
        """Create the durable exchange, stage queues and dead-letter queues (idempotent)."""
        self._with_channel(lambda ch: self._declare_on(ch, stages))

    def publish(self, stage: StageName, body: bytes, *, message_id: str) -> None:
        """Publish a persistent message and wait for the broker's confirm.

        Raises:
            BrokerError: unroutable (the queue was not declared), or unreachable for
                ``publish_retry_s``.
        """
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type="application/json",
            message_id=message_id,
            timestamp=int(time.time()),
        )

        def send(channel: BlockingChannel) -> None:
            try:
                channel.basic_publish(self.exchange, self.queue(stage), body, properties, mandatory=True)
            except pika.exceptions.UnroutableError as exc:
                raise BrokerError(f"message {message_id} could not be routed to {self.queue(stage)}") from exc

        self._with_channel(send)

    def message_count(self, stage: StageName) -> int:
        """How many messages wait in a stage's queue (unacknowledged deliveries not counted)."""
        return self._with_channel(
            lambda ch: int(ch.queue_declare(self.queue(stage), passive=True).method.message_count)
        )

    def ready(self) -> bool:
        """Whether the broker answers a passive declare of the ``sfm`` queue; within :data:`READY_TIMEOUT_S`.

        One try on a connection bounded by that time. While a publish holds the publishing
        connection (e.g. retrying a broker that is away), the outcome of the last call on it is
        answered instead of waiting.
        """
        try:
            self._with_channel(
                lambda ch: ch.queue_declare(self.queue("sfm"), passive=True),
                retry_for_s=0.0,
                timeout_s=READY_TIMEOUT_S,
                lock_wait_s=_READY_LOCK_WAIT_S,
            )
        except _BusyError:
            return self._healthy
        except BrokerError:
            return False
        return True

    def drain_dead_letters(self, stage: StageName) -> list[bytes]:
        """Remove and return the bodies in a stage's dead-letter queue, oldest first."""

        def drain(channel: BlockingChannel) -> list[bytes]:
            bodies: list[bytes] = []
            while True:
                method, _properties, body = channel.basic_get(self.dead_letter_queue(stage), auto_ack=True)
                if method is None:
                    return bodies
                bodies.append(body)

        return self._with_channel(drain)

    def close(self) -> None:
        """Close the publishing connection (consumers close their own when stopped)."""
        with self._lock:
            self._drop_publisher()

    def _with_channel(
        self,
        call: Callable[[BlockingChannel], _T],
        retry_for_s: float | None = None,
        timeout_s: float | None = None,
        lock_wait_s: float | None = None,
    ) -> _T:
        """Run ``call`` on the publishing channel, reconnecting with backoff while the broker is away.

        Args:
            call: what to do on the channel.
            retry_for_s: how long to keep retrying; ``publish_retry_s`` when None.
            timeout_s: the most the whole call may take (waiting for the publishing connection and
                connecting included); ``max(retry_for_s, 1 s)`` when None.
            lock_wait_s: how long to wait for another call to free the publishing connection;
                ``timeout_s`` when None.

        Raises:
            BrokerError: refused (404/406), or still failing after ``retry_for_s``; :class:`_BusyError`
                (a ``BrokerError``) when another call held the publishing connection all along.
        """
        retry_for_s = self._publish_retry_s if retry_for_s is None else retry_for_s
        timeout_s = max(retry_for_s, 1.0) if timeout_s is None else timeout_s
        started = time.monotonic()
        deadline = started + retry_for_s
        hard_deadline = started + timeout_s
        backoff = Backoff(first=0.25, cap=5.0)
        lock_wait_s = timeout_s if lock_wait_s is None else min(lock_wait_s, timeout_s)
        if not self._lock.acquire(timeout=lock_wait_s):
            raise _BusyError(f"the publishing connection stayed busy for {lock_wait_s:.1f} s")
        try:
            while True:
                try:
                    channel = self._publisher_channel(max(hard_deadline - time.monotonic(), 0.1))
                    result = call(channel)
                    self._healthy = True
                    return result
                except pika.exceptions.ChannelClosedByBroker as exc:
                    self._drop_publisher()
                    if exc.reply_code in (404, 406):  # NOT_FOUND, PRECONDITION_FAILED: not transient
                        raise BrokerError(f"broker refused: {exc.reply_text}") from exc
                    error: BaseException = exc
                except (pika.exceptions.NackError, *_CONNECTION_ERRORS) as exc:
                    self._drop_publisher()
                    error = exc
                self._healthy = False
                delay = backoff.next_delay()
                if time.monotonic() + delay > min(deadline, hard_deadline):
                    raise BrokerError(f"RabbitMQ unreachable for {retry_for_s:.0f} s: {error}") from error
                log.warning("RabbitMQ call failed (%s); retrying in %.1f s", error, delay)
                time.sleep(delay)
        finally:
            self._lock.release()

    def _publisher_channel(self, connect_timeout_s: float) -> BlockingChannel:
        """The open publishing channel; a new connection (declaring the topology) when there is none."""
        if self._connection is not None and self._connection.is_open and self._channel is not None:
            try:
                self._connection.process_data_events(0)  # answer heartbeats, notice a dead connection
            except _CONNECTION_ERRORS as exc:  # e.g. dropped while idle: open a fresh one right away
                log.info("publishing connection was lost while idle (%s); reconnecting", exc)
            else:
                if self._channel.is_open:
                    return self._channel
        self._drop_publisher()
        self._connection = self._connect("publisher", timeout_s=connect_timeout_s)
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()
        # Idempotent: a broker that lost its definitions (a fresh node) routes publishes again.
        self._declare_on(self._channel, STAGES)
        return self._channel

    def _drop_publisher(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            _close_quietly(connection)

    # --- consuming side (a connection per consume call) ------------------------------------------

    def consume(self, stage: StageName, handler: Handler, *, stop: threading.Event) -> None:
        """Deliver a stage's messages to ``handler`` one at a time until ``stop`` is set.

        Declares the stage's queues first. Blocks, reconnecting with backoff whenever the connection
        is lost. After ``stop``: no new message is taken, the running handler is waited for
        (heartbeats keep flowing), an unsettled delivery is requeued, and the connection is closed.
        """
        backoff = Backoff(first=0.5, cap=self._reconnect_cap_s)
        in_flight: list[threading.Thread] = []
        while not stop.is_set():
            try:
                connection = self._connect(f"consumer {self.queue(stage)}")
            except _CONNECTION_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("cannot reach RabbitMQ (%s); retrying in %.1f s", exc, delay)
                stop.wait(delay)
                continue
            try:
                self._serve(connection, stage, handler, stop, in_flight)
                backoff.reset()
            except _CONNECTION_ERRORS as exc:
                log.warning("RabbitMQ connection of %s lost (%s); reconnecting", self.queue(stage), exc)
                stop.wait(backoff.next_delay())
            finally:
                _close_quietly(connection)
                # Prefetch 1 per consumer: never take a new message while the last one is still handled.
                for thread in in_flight:
                    thread.join()
                in_flight.clear()

    def _serve(
        self,
        connection: BlockingConnection,
        stage: StageName,
        handler: Handler,
        stop: threading.Event,
        in_flight: list[threading.Thread],
    ) -> None:
        channel = connection.channel()
        self._declare_on(channel, (stage,))
        channel.basic_qos(prefetch_count=1)
        queue = self.queue(stage)

        def on_message(
            ch: BlockingChannel,
            method: pika.spec.Basic.Deliver,
            properties: pika.spec.BasicProperties,
            body: bytes,
        ) -> None:
            delivery = _RabbitDelivery(
                connection, ch, method.delivery_tag, stage, body, properties.message_id, bool(method.redelivered)
            )
            thread = threading.Thread(
                target=_run_handler, args=(handler, delivery, queue), name=f"handler-{queue}", daemon=True
            )
            in_flight.append(thread)
            thread.start()

        consumer_tag = channel.basic_consume(queue, on_message)
        log.info("consuming %s", queue)
        while not stop.is_set():
            connection.process_data_events(time_limit=_PUMP_S)
            in_flight[:] = [t for t in in_flight if t.is_alive()]
        channel.basic_cancel(consumer_tag)
        while any(t.is_alive() for t in in_flight):
            connection.process_data_events(time_limit=_PUMP_S)
        connection.process_data_events(0)  # flush the last settle call
        in_flight.clear()

    # --- shared helpers --------------------------------------------------------------------------

    def _declare_on(self, channel: BlockingChannel, stages: tuple[StageName, ...]) -> None:
        channel.exchange_declare(self.exchange, exchange_type="direct", durable=True)
        for stage in stages:
            queue, dead = self.queue(stage), self.dead_letter_queue(stage)
            channel.queue_declare(dead, durable=True)
            channel.queue_bind(dead, self.exchange, routing_key=dead)
            channel.queue_declare(
                queue,
                durable=True,
                arguments={"x-dead-letter-exchange": self.exchange, "x-dead-letter-routing-key": dead},
            )
            channel.queue_bind(queue, self.exchange, routing_key=queue)

    def _connect(self, role: str, *, timeout_s: float = _CONNECT_TIMEOUT_S) -> BlockingConnection:
        params = copy.copy(self._params)
        bounded = min(timeout_s, _CONNECT_TIMEOUT_S)
        params.socket_timeout = bounded
        params.stack_timeout = bounded
        params.client_properties = {"connection_name": f"vid2scene {role} {socket.gethostname()}:{os.getpid()}"}
        return BlockingConnection(params)


class _BusyError(BrokerError):
    """Another call held the publishing connection for the whole time allowed."""


def _close_quietly(connection: BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except _CONNECTION_ERRORS as exc:
        log.debug("closing a RabbitMQ connection failed: %s", exc)
