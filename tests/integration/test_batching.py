"""The broker adapter's pieces of the consumer loop, on the real RabbitMQ.

`wire.bytes_waiting`: "has a delivery arrived already?" (the loop's use of it is tested in
tests/unit/test_drain.py). Were a kombu or py-amqp release to move the socket, it would
answer True always and batches would follow a steady stream again, silently; the first test
would fail instead. `ConfirmedSender.send_events` and `collect`: events published without
waiting, handed back once the broker confirmed them, never when it refused them."""

from __future__ import annotations

import json
import time

import pytest
from amqp.exceptions import MessageNacked
from kombu import Connection, Queue
from kombu.messaging import Consumer

from tests.conftest import Bus
from worker import config
from worker import samples as s
from worker.adapters import broker, confirms, wire
from worker.consumer.arrivals import Arrivals
from worker.contracts.envelope import Outgoing

pytestmark = pytest.mark.integration


def _consume(settings: config.Settings, connection: Connection, waiting: Arrivals) -> Consumer:
    topo = broker.topology(settings)
    broker.declare(connection, topo)
    return Consumer(
        connection.default_channel,
        queues=[topo.inbound],
        on_message=waiting.add,
        prefetch_count=settings.prefetch,
    )


def test_pending_tells_whether_a_delivery_waits_without_waiting(
    settings: config.Settings, bus: Bus
) -> None:
    waiting = Arrivals(settings.batch_size)
    with broker.connect(settings) as connection, _consume(settings, connection, waiting):
        assert wire.bytes_waiting(connection) is False
        bus.publish(s.request(s.key("1543301276")))
        deadline = time.monotonic() + 5
        while not wire.bytes_waiting(connection) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert wire.bytes_waiting(connection) is True
        connection.drain_events(timeout=1)
        assert len(waiting) == 1
        assert wire.bytes_waiting(connection) is False


def _events(count: int, first: int = 0) -> list[Outgoing]:
    return [
        Outgoing(f"event-{i}", "decision.registered", json.dumps({"n": i}))
        for i in range(first, first + count)
    ]


def _collect_until(
    batches: confirms.ConfirmedSender, count: int, *, refusals: bool = False, seconds: float = 10
) -> list[Outgoing]:
    """`refusals`: nacks are expected; the broker may send one for several messages or one
    each, so every read that finds another raises again."""
    confirmed: list[Outgoing] = []
    deadline = time.monotonic() + seconds
    while len(confirmed) < count and time.monotonic() < deadline:
        try:
            confirmed += batches.collect()
        except MessageNacked:
            if not refusals:
                raise
        time.sleep(0.001)
    return confirmed


def test_events_sent_without_waiting_are_collected_once_confirmed(
    settings: config.Settings, bus: Bus
) -> None:
    with broker.connect(settings) as connection:
        batches = confirms.ConfirmedSender(connection)
        batches.send_events(_events(300))
        batches.publish(_events(2, first=300))  # waits: for these and all sent before
        assert [e.id for e in batches.collect()] == [f"event-{i}" for i in range(300)]
        assert batches.collect() == []  # each confirmed event is handed out once
        batches.send_events(_events(5, first=400))
        assert [e.id for e in _collect_until(batches, 5)] == [f"event-{i}" for i in range(400, 405)]
    assert bus.depth("test.all-events") == 307


def test_a_refused_event_is_not_collected_and_the_refusal_raises(
    settings: config.Settings, bus: Bus
) -> None:
    """A queue that takes one message and refuses more (reject-publish): the broker nacks."""
    with broker.connect(settings) as connection:
        Queue(
            "test.full",
            exchange=broker.EVENTS_EXCHANGE,
            routing_key="decision.#",
            durable=True,
            queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"},
        )(connection.default_channel).declare()
        batches = confirms.ConfirmedSender(connection)
        batches.send_events(_events(3))
        confirmed: list[Outgoing] = []

        def collect_for_ten_seconds() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                confirmed.extend(batches.collect())

        with pytest.raises(MessageNacked):
            collect_for_ten_seconds()
        # The first one fitted and is confirmed (its confirm may come after the refusals: the
        # other queues are quorum queues); the other two are never handed out.
        confirmed += _collect_until(batches, 1 - len(confirmed), refusals=True)
        assert [e.id for e in confirmed] == ["event-0"]
        assert _collect_until(batches, 1, refusals=True, seconds=0.5) == []


def test_what_was_confirmed_before_the_connection_went_stays_confirmed(
    settings: config.Settings, bus: Bus
) -> None:
    """A session that ends (the broker gone) hands over the confirms it had read: those events
    are marked sent, not published a second time by the relay."""
    connection = broker.connect(settings)
    batches = confirms.ConfirmedSender(connection)
    batches.send_events(_events(20))
    batches.confirmed()  # read: the callbacks have them
    connection.release()
    assert [e.id for e in batches.collected()] == [f"event-{i}" for i in range(20)]
    assert batches.collected() == []
    assert bus.depth("test.all-events") == 20


def test_a_batch_of_events_goes_to_the_broker_in_one_socket_write(
    settings: config.Settings, bus: Bus
) -> None:
    """One write per batch, not one per event; the broker gets every event whole, in order,
    with its properties, and confirms each under its own delivery tag."""
    with broker.connect(settings) as connection:
        batches = confirms.ConfirmedSender(connection)
        transport = connection.connection.transport
        writes: list[int] = []
        write = transport.write

        def counted(data: bytes) -> None:
            writes.append(len(data))
            write(data)

        transport.write = counted
        try:
            batches.send_events(_events(50))
            batches.send_events(_events(30, first=50))
        finally:
            del transport.write
        assert len(writes) == 2
        assert [e.id for e in _collect_until(batches, 80)] == [f"event-{i}" for i in range(80)]
    taken = bus.take("test.all-events")
    assert [json.loads(m.body)["n"] for m in taken] == list(range(80))
    assert taken[7].properties["message_id"] == "event-7"
    assert taken[7].properties["type"] == "decision.registered"
    assert taken[7].delivery_info["routing_key"] == "decision.registered"


def test_an_event_larger_than_a_frame_arrives_whole(settings: config.Settings, bus: Bus) -> None:
    """Bodies over the negotiated frame size are split into several body frames."""
    big = json.dumps({"n": 0, "pad": "x" * 400_000})
    with broker.connect(settings) as connection:
        assert len(big) > connection.connection.frame_max
        batches = confirms.ConfirmedSender(connection)
        batches.publish([Outgoing("event-big", "decision.registered", big), *_events(2, first=1)])
    bodies = [m.body for m in bus.take("test.all-events")]
    assert [json.loads(b)["n"] for b in bodies] == [0, 1, 2]
    assert bodies[0] == big
