"""One test suite for both brokers: every test runs against RabbitMQ and the in-process broker."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from shared.broker import Broker, Delivery, DeliverySettledError, MemoryBroker, make_broker
from shared.messages import StageName

WAIT_S = 15.0


@dataclass
class BrokerCase:
    """A broker under test and how to build more brokers like it (same queues)."""

    kind: str
    make: Callable[..., Broker]
    url: str = ""
    prefix: str = ""
    made: list[Broker] = field(default_factory=list)

    def new(self, **kwargs: object) -> Broker:
        broker = self.make(**kwargs)
        self.made.append(broker)
        return broker


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.service)])
def case(request: pytest.FixtureRequest) -> Iterator[BrokerCase]:
    """A :class:`BrokerCase` for each implementation (RabbitMQ isolated by a unique queue prefix)."""
    if request.param == "memory":
        shared = MemoryBroker(prefix="t.")
        built = BrokerCase("memory", make=lambda **_: shared, prefix="t.")
    else:
        from shared.broker.rabbitmq import RabbitMQBroker

        url = request.getfixturevalue("rabbitmq_url")
        prefix = request.getfixturevalue("rabbitmq_prefix")
        built = BrokerCase(
            "rabbitmq", make=lambda **kw: RabbitMQBroker(url, prefix=prefix, **kw), url=url, prefix=prefix
        )
    yield built
    for broker in built.made:
        broker.close()


class ConsumerThread:
    """``broker.consume`` in a thread; deliveries are handed to ``handler`` and recorded in ``seen``."""

    def __init__(self, broker: Broker, stage: StageName, handler: Callable[[Delivery], None]) -> None:
        self.seen: queue.Queue[Delivery] = queue.Queue()
        self.stop = threading.Event()

        def record_then_handle(delivery: Delivery) -> None:
            self.seen.put(delivery)
            handler(delivery)

        self.thread = threading.Thread(
            target=broker.consume, args=(stage, record_then_handle), kwargs={"stop": self.stop}, daemon=True
        )
        self.thread.start()

    def next(self, timeout: float = WAIT_S) -> Delivery:
        return self.seen.get(timeout=timeout)

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.seen.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "consume() did not return after stop"


def ack(delivery: Delivery) -> None:
    delivery.ack()


def test_published_message_is_delivered_once_with_its_body_and_id(case: BrokerCase) -> None:
    broker = case.new()
    broker.declare()
    broker.publish("sfm", b'{"hello": 1}', message_id="m-1")
    consumer = ConsumerThread(broker, "sfm", ack)
    try:
        got = consumer.next()
        assert (got.body, got.message_id, got.redelivered, got.stage) == (b'{"hello": 1}', "m-1", False, "sfm")
        assert consumer.nothing_within(0.5)
    finally:
        consumer.close()
    assert broker.message_count("sfm") == 0
    assert broker.message_count("gs") == 0


def test_settling_a_delivery_twice_is_refused(case: BrokerCase) -> None:
    broker = case.new()
    broker.declare()
    broker.publish("gs", b"x", message_id="m-1")
    errors: queue.Queue[BaseException] = queue.Queue()

    def ack_twice(delivery: Delivery) -> None:
        delivery.ack()
        try:
            delivery.reject_to_dead_letter()
        except DeliverySettledError as exc:
            errors.put(exc)

    consumer = ConsumerThread(broker, "gs", ack_twice)
    try:
        consumer.next()
        assert isinstance(errors.get(timeout=WAIT_S), DeliverySettledError)
    finally:
        consumer.close()
    assert broker.drain_dead_letters("gs") == []


def test_unsettled_message_is_redelivered_marked_redelivered_after_its_consumer_dies(case: BrokerCase) -> None:
    broker = case.new()
    broker.declare()
    broker.publish("gs", b"work", message_id="m-1")
    if case.kind == "rabbitmq":
        # A consumer process that takes the message and is killed before it acks: its connection dies.
        script = (
            "import sys, threading, time\n"
            "from shared.broker.rabbitmq import RabbitMQBroker\n"
            f"b = RabbitMQBroker({case.url!r}, prefix={case.prefix!r})\n"
            "def take(d):\n"
            "    print('took', d.message_id, flush=True)\n"
            "    time.sleep(600)\n"
            "b.consume('gs', take, stop=threading.Event())\n"
        )
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "took m-1"
            assert broker.message_count("gs") == 0  # held, unacked, by the child
        finally:
            child.kill()
            child.wait(WAIT_S)
    else:
        gate = threading.Event()

        def hang(_: Delivery) -> None:
            gate.wait(WAIT_S)

        dying = ConsumerThread(broker, "gs", hang)
        assert dying.next().redelivered is False
        assert broker.message_count("gs") == 0
        dying.stop.set()
        gate.set()  # the handler returns without settling, as a crashed worker would
        dying.close()

    survivor = ConsumerThread(broker, "gs", ack)
    try:
        again = survivor.next()
        assert (again.body, again.message_id, again.redelivered) == (b"work", "m-1", True)
    finally:
        survivor.close()
    assert broker.message_count("gs") == 0


def test_poison_message_is_dead_lettered_and_the_consumer_keeps_serving(case: BrokerCase) -> None:
    broker = case.new()
    broker.declare()
    broker.publish("nerf", b"\x00not json", message_id="poison")
    broker.publish("nerf", b'{"boom": true}', message_id="crash")
    broker.publish("nerf", b'{"ok": true}', message_id="good")
    handled: queue.Queue[str] = queue.Queue()

    def handle(delivery: Delivery) -> None:
        try:
            body = json.loads(delivery.body)
        except ValueError:
            delivery.reject_to_dead_letter()
            return
        if body.get("boom"):
            raise RuntimeError("a handler bug")  # an escaping exception dead-letters the message
        delivery.ack()
        handled.put(str(delivery.message_id))

    consumer = ConsumerThread(broker, "nerf", handle)
    try:
        assert handled.get(timeout=WAIT_S) == "good"
    finally:
        consumer.close()
    assert broker.drain_dead_letters("nerf") == [b"\x00not json", b'{"boom": true}']
    assert broker.drain_dead_letters("nerf") == []
    assert broker.message_count("nerf") == 0


def test_second_message_is_not_delivered_before_the_first_is_acked(case: BrokerCase) -> None:
    broker = case.new()
    broker.declare()
    broker.publish("sfm", b"1", message_id="first")
    broker.publish("sfm", b"2", message_id="second")
    release = threading.Event()

    def slow_ack(delivery: Delivery) -> None:
        if delivery.message_id == "first":
            release.wait(WAIT_S)
        delivery.ack()

    consumer = ConsumerThread(broker, "sfm", slow_ack)
    try:
        assert consumer.next().message_id == "first"
        assert consumer.nothing_within(1.0)
        assert broker.message_count("sfm") == 1  # still in the queue, not prefetched by the consumer
        release.set()
        assert consumer.next().message_id == "second"
    finally:
        release.set()
        consumer.close()
    assert broker.message_count("sfm") == 0


@pytest.mark.slow
def test_handler_longer_than_the_heartbeat_keeps_its_connection_and_its_ack_counts(case: BrokerCase) -> None:
    broker = case.new(heartbeat_s=2) if case.kind == "rabbitmq" else case.new()
    broker.declare()
    broker.publish("gs", b"long", message_id="long")

    # Three heartbeat intervals: a starved connection would be closed by RabbitMQ (no heartbeats in memory).
    work_s = 6.0 if case.kind == "rabbitmq" else 0.5

    def work(delivery: Delivery) -> None:
        time.sleep(work_s)
        delivery.ack()

    consumer = ConsumerThread(broker, "gs", work)
    try:
        assert consumer.next().redelivered is False
        # Had the broker dropped the starved connection, the message would come back after the handler.
        assert consumer.nothing_within(work_s + 2.0), "the message came back: the ack was lost with the connection"
    finally:
        consumer.close()
    assert broker.message_count("gs") == 0
    check = ConsumerThread(case.new(), "gs", ack)
    try:
        assert check.nothing_within(1.0)
    finally:
        check.close()


@pytest.mark.service
def test_queues_are_durable_with_dead_letter_routing_and_messages_are_persistent(
    rabbitmq_url: str, rabbitmq_prefix: str
) -> None:
    import pika
    import pika.exceptions

    from shared.broker.rabbitmq import RabbitMQBroker

    broker = RabbitMQBroker(rabbitmq_url, prefix=rabbitmq_prefix)
    try:
        broker.declare()
        broker.publish("sfm", b"{}", message_id="p-1")
    finally:
        broker.close()
    queue_name, dead = f"{rabbitmq_prefix}stage.sfm", f"{rabbitmq_prefix}stage.sfm.dead"
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        method, properties, body = channel.basic_get(queue_name, auto_ack=True)
        assert method is not None and body == b"{}"
        assert properties.delivery_mode == 2
        assert properties.message_id == "p-1"
        # Re-declaring with the same durable flag and arguments is accepted ...
        dlx = {"x-dead-letter-exchange": f"{rabbitmq_prefix}vid2scene", "x-dead-letter-routing-key": dead}
        channel.queue_declare(queue_name, durable=True, arguments=dlx)
        channel.queue_declare(dead, durable=True)
        channel.exchange_declare(f"{rabbitmq_prefix}vid2scene", exchange_type="direct", durable=True)
        # ... and a non-durable declaration of the same queue is refused (406 PRECONDITION_FAILED).
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare(queue_name, durable=False, arguments=dlx)
        assert refused.value.reply_code == 406
    finally:
        connection.close()


def test_declared_broker_is_ready_and_a_closed_in_process_one_is_not(case: BrokerCase) -> None:
    broker = case.new()
    broker.declare()
    assert broker.ready()
    if case.kind == "memory":
        broker.close()
        assert not broker.ready()


def test_unreachable_rabbitmq_is_not_ready_without_waiting_out_the_publish_retries() -> None:
    from shared.broker.rabbitmq import RabbitMQBroker

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker = RabbitMQBroker(f"amqp://guest:guest@127.0.0.1:{port}/%2F", publish_retry_s=60.0)
    started = time.monotonic()
    assert not broker.ready()
    assert time.monotonic() - started < 10.0
    broker.close()


def test_readiness_answers_within_a_second_while_a_publish_retries_an_unreachable_rabbitmq() -> None:
    from shared.broker import BrokerError
    from shared.broker.rabbitmq import RabbitMQBroker

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker = RabbitMQBroker(f"amqp://guest:guest@127.0.0.1:{port}/%2F", publish_retry_s=8.0)
    failures: list[BaseException] = []

    def publish() -> None:
        try:
            broker.publish("sfm", b"{}", message_id="m")
        except BrokerError as exc:
            failures.append(exc)

    publisher = threading.Thread(target=publish)
    publisher.start()
    time.sleep(0.5)  # the publish holds the connection, retrying
    started = time.monotonic()
    assert not broker.ready()  # the last outcome of the publish holding the connection
    assert time.monotonic() - started < 1.0
    publisher.join(20)
    assert len(failures) == 1  # the publish itself keeps its own budget
    broker.close()


def test_publish_with_a_short_budget_gives_up_on_an_unreachable_rabbitmq_within_it() -> None:
    from shared.broker import BrokerError, make_broker

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker = make_broker(f"amqp://guest:guest@127.0.0.1:{port}/%2F", publish_retry_s=1.0)
    started = time.monotonic()
    with pytest.raises(BrokerError):
        broker.publish("sfm", b"{}", message_id="m")
    assert time.monotonic() - started < 1.5
    broker.close()


def test_make_broker_picks_the_implementation_by_url_scheme() -> None:
    from shared.broker.rabbitmq import RabbitMQBroker

    assert isinstance(make_broker("amqp://guest:guest@127.0.0.1:5672/%2F"), RabbitMQBroker)
    local = make_broker("memory://local-test")
    assert isinstance(local, MemoryBroker)
    assert make_broker("memory://local-test") is local  # the server and in-process workers share it
    assert make_broker("memory://other") is not local
    local.close()
    assert make_broker("memory://local-test") is not local
    with pytest.raises(ValueError, match="unsupported broker URL"):
        make_broker("redis://127.0.0.1")


@pytest.mark.slow
@pytest.mark.service
def test_rabbitmq_consumer_and_publisher_reconnect_after_the_broker_restarts(private_rabbitmq) -> None:
    from shared.broker.rabbitmq import RabbitMQBroker

    broker = RabbitMQBroker(private_rabbitmq.url, reconnect_cap_s=1.0, publish_retry_s=60.0)
    broker.declare()
    consumer = ConsumerThread(broker, "gs", ack)
    try:
        broker.publish("gs", b"before", message_id="before")
        assert consumer.next().message_id == "before"
        broker.publish("sfm", b"kept", message_id="kept")  # nobody consumes sfm: it must survive

        private_rabbitmq.stop()
        private_rabbitmq.start()

        broker.publish("gs", b"after", message_id="after")
        assert consumer.next(timeout=60.0).message_id == "after"
        assert broker.message_count("sfm") == 1
    finally:
        consumer.close()
        broker.close()
