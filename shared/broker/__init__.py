"""Stage queues behind one interface: :func:`make_broker` picks RabbitMQ or the in-process broker by URL."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from shared.broker.base import (
    DEAD_LETTER_SUFFIX,
    EXCHANGE,
    Broker,
    BrokerError,
    Delivery,
    DeliverySettledError,
    Handler,
    dead_letter_queue,
    stage_queue,
)
from shared.broker.memory import MemoryBroker

_memory_brokers: dict[str, MemoryBroker] = {}
_memory_lock = threading.Lock()


def make_broker(url: str, *, prefix: str = "", publish_retry_s: float | None = None) -> Broker:
    """The broker a URL names.

    Args:
        url: ``amqp://`` or ``amqps://`` for RabbitMQ (pika URL syntax, e.g.
            ``amqp://guest:guest@127.0.0.1:5672/%2F?heartbeat=30``); ``memory://NAME`` for the
            in-process broker — every call with the same ``NAME`` (and prefix) in one process returns the
            same broker, so the web server and in-process workers share queues.
        prefix: prepended to the exchange and queue names.
        publish_retry_s: RabbitMQ only: the most a publish may take before it raises
            :class:`BrokerError` (the RabbitMQ broker's default when None).

    Returns:
        A broker; call :meth:`Broker.declare` before publishing.

    Raises:
        ValueError: the scheme is neither AMQP nor memory.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("amqp", "amqps"):
        from shared.broker.rabbitmq import RabbitMQBroker  # pika only where RabbitMQ is used

        if publish_retry_s is None:
            return RabbitMQBroker(url, prefix=prefix)
        return RabbitMQBroker(url, prefix=prefix, publish_retry_s=publish_retry_s)
    if scheme == "memory":
        key = f"{urlsplit(url).netloc}{urlsplit(url).path}|{prefix}"
        with _memory_lock:
            broker = _memory_brokers.get(key)
            if broker is None or broker.closed:
                broker = _memory_brokers[key] = MemoryBroker(prefix)
            return broker
    raise ValueError(f"unsupported broker URL {url!r}: use amqp://... (RabbitMQ) or memory:// (in-process)")


__all__ = [
    "DEAD_LETTER_SUFFIX",
    "EXCHANGE",
    "Broker",
    "BrokerError",
    "Delivery",
    "DeliverySettledError",
    "Handler",
    "MemoryBroker",
    "dead_letter_queue",
    "make_broker",
    "stage_queue",
]
