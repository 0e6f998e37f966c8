"""RabbitMQ (or the embedded kombu transport): topology, connections, publishing.

The consumer and the publisher use separate connections: py-amqp drains deliveries while it waits
for a publisher confirm, so confirming on the consuming connection re-enters the callback.
"""

from __future__ import annotations

import datetime as dt
import itertools
import select
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amqp import basic_message as amqp_message
from amqp import exceptions as amqp_errors
from kombu import exceptions as kombu_errors
from kombu.connection import Connection
from kombu.entity import Exchange, Queue, binding
from kombu.messaging import Producer

from worker import __version__
from worker.adapters import embedded
from worker.config import Settings
from worker.contracts.envelope import Outgoing

INBOUND = Exchange("kmo.inbound", type="topic", durable=True)
EVENTS = Exchange("kmo.events", type="topic", durable=True)
DEAD_LETTER = Exchange("kmo.dead-letter", type="topic", durable=True)
DEAD_LETTER_QUEUE = "kmo.dead-letter"
CLOUDEVENTS_JSON = "application/cloudevents+json"
KEEP_ALIVE_READ_SECONDS = 0.001  # a frame whose first bytes have arrived: the rest is near
EMBEDDED_POLL_SECONDS = 0.05  # the filesystem transport polls its folder; keep latency low


@dataclass(frozen=True)
class Topology:
    inbound: Queue
    downstream: tuple[Queue, ...]
    dead_letters: Queue

    @property
    def queues(self) -> tuple[Queue, ...]:
        return (self.inbound, *self.downstream, self.dead_letters)


def topology(settings: Settings) -> Topology:
    quorum = not settings.is_embedded_broker and settings.queue_type == "quorum"
    arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    inbound_arguments = dict(arguments)
    if quorum:
        # A message that kills the worker every time it is delivered (it never gets to ack or
        # dead-letter it) is moved to kmo.dead-letter by the broker after a few deliveries,
        # instead of looping forever; at-least-once, so the move itself cannot lose it.
        inbound_arguments |= {
            "x-delivery-limit": settings.delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER.name,
            "x-dead-letter-routing-key": "delivery_limit",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def queue(name: str, exchange: Exchange, keys: list[str], args: dict[str, Any]) -> Queue:
        bindings = [binding(exchange, routing_key=key) for key in keys]
        return Queue(name, bindings=bindings, durable=True, queue_arguments=args)

    downstream = tuple(
        queue(name, EVENTS, keys, arguments)
        for name, keys in sorted(settings.downstream_queues.items())
    )
    return Topology(
        inbound=queue(settings.inbound_queue, INBOUND, ["#"], inbound_arguments),
        downstream=downstream,
        dead_letters=queue(DEAD_LETTER_QUEUE, DEAD_LETTER, ["#"], arguments),
    )


def connect(settings: Settings, *, confirms: bool = False) -> Connection:
    if settings.is_embedded_broker:
        folder = settings.broker_folder.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),
            "polling_interval": EMBEDDED_POLL_SECONDS,
        }
        return Connection("filesystem://", transport=embedded.Transport, transport_options=options)
    options = {"confirm_publish": True} if confirms else {}
    return Connection(
        settings.broker_url, transport_options=options, heartbeat=settings.heartbeat_seconds
    )


def declare(connection: Connection, topo: Topology) -> None:
    """Idempotent. The embedded transport keeps bindings per process, so every process that
    publishes declares the topology first."""
    channel = connection.default_channel
    for exchange in (INBOUND, EVENTS, DEAD_LETTER):
        exchange(channel).declare()
    for queue in topo.queues:
        queue(channel).declare()


def publish_event(producer: Producer, event_id: str, type_name: str, body: str) -> None:
    producer.publish(
        body.encode("utf-8"),
        exchange=EVENTS,
        routing_key=type_name,
        content_type=CLOUDEVENTS_JSON,
        content_encoding="utf-8",
        message_id=event_id,
        type=type_name,
        delivery_mode=2,
        mandatory=True,
    )


def publish_inbound(producer: Producer, body: bytes, type_name: str, user_id: str | None) -> None:
    properties: dict[str, Any] = {"user_id": user_id} if user_id else {}
    producer.publish(
        body,
        exchange=INBOUND,
        routing_key=type_name,
        content_type=CLOUDEVENTS_JSON,
        content_encoding="utf-8",
        delivery_mode=2,
        **properties,
    )


def pending(connection: Connection) -> bool:
    """Whether bytes from the broker are waiting to be read right now, without waiting.

    A socket's own timeout cannot tell: CPython waits at least a millisecond (it rounds a
    timeout up to whole milliseconds), so at a steady rate of more than one delivery a
    millisecond a drain bounded by "a delivery within the timeout" never ends. A transport
    without a socket (the embedded one) answers True: its drain polls with its own timeout."""
    transport = getattr(connection.connection, "transport", None)
    sock = getattr(transport, "sock", None)
    if sock is None:
        return True
    if getattr(transport, "_read_buffer", b""):  # part of a frame, read already
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def keep_alive(connection: Connection) -> None:
    """Heartbeats both ways on an AMQP connection: read what the broker sent meanwhile (its
    heartbeats among it; deliveries go to their consumer's callback) without waiting, then send
    one if it is due. py-amqp does neither by itself, and RabbitMQ closes a connection that has said
    nothing for two heartbeat intervals: an idle worker's connections were reset every minute or
    so. Raises (recoverable) when the broker's own heartbeats have stopped coming."""
    while pending(connection):
        try:
            connection.drain_events(timeout=KEEP_ALIVE_READ_SECONDS)
        except (TimeoutError, socket.timeout):  # noqa: UP041 - py-amqp raises socket.timeout
            break
    connection.heartbeat_check()


# Errors after which a new connection may succeed: the broker went away or closed the channel.
RECOVERABLE: tuple[type[BaseException], ...] = (
    amqp_errors.RecoverableConnectionError,  # includes CONNECTION_FORCED at a broker stop
    amqp_errors.RecoverableChannelError,
    amqp_errors.MessageNacked,  # the broker could not take a published message
    kombu_errors.OperationalError,  # kombu could not (re)connect
    OSError,  # sockets
)


@dataclass(frozen=True)
class Delivery:
    """The parts of a delivery the worker needs, independent of the transport."""

    body: bytes
    properties: Mapping[str, Any]
    headers: Mapping[str, Any]
    exchange: str
    routing_key: str


def delivery_of(message: Any) -> Delivery:
    info = message.delivery_info or {}
    body = message.body
    return Delivery(
        body=body if isinstance(body, bytes) else str(body).encode(),
        properties=message.properties or {},
        headers=message.headers or {},
        exchange=info.get("exchange", ""),
        routing_key=info.get("routing_key", ""),
    )


def dead_letter(
    producer: Producer, delivery: Delivery, reason: str, error: str, now: dt.datetime
) -> None:
    """Move a delivery to `kmo.dead-letter` with its body unchanged and the x-kmo-* headers.

    `user_id` cannot be kept as a property (RabbitMQ checks it against this connection's user),
    so the original publisher is kept in a header."""
    headers = {
        **delivery.headers,
        "x-kmo-reason": reason,
        "x-kmo-error": error[:2000],
        "x-kmo-failed-at": now.isoformat(),
        "x-kmo-worker-version": __version__,
        "x-kmo-original-exchange": delivery.exchange,
        "x-kmo-original-routing-key": delivery.routing_key,
    }
    if delivery.properties.get("user_id"):
        headers["x-kmo-original-user-id"] = delivery.properties["user_id"]
    producer.publish(
        delivery.body,
        exchange=DEAD_LETTER,
        routing_key=reason,
        headers=headers,
        content_type=delivery.properties.get("content_type") or "application/octet-stream",
        content_encoding=delivery.properties.get("content_encoding") or "binary",
        delivery_mode=2,
    )


def take_all(connection: Connection, queue_name: str) -> list[bytes]:
    """Take every message waiting in a queue (for the demo and operators' tools)."""
    channel = connection.default_channel
    bodies = []
    while (message := channel.basic_get(queue_name, no_ack=True)) is not None:
        body = message.body
        bodies.append(body if isinstance(body, bytes) else str(body).encode())
    return bodies


class ConfirmedBatches:
    """Publishes events on a channel in confirm mode without waiting per message: one round
    trip per batch (`publish`), or none at all (`send_events`, whose confirms are picked up
    later with `collect`).

    py-amqp with `confirm_publish` waits after every message; here the channel is put in
    confirm mode by hand and the acks (possibly `multiple`) are collected by callbacks whenever
    the connection is read. A nack, a confirm overdue by `timeout` or a lost connection raises:
    the events it concerns stay unmarked in the outbox, to be published again.
    """

    def __init__(
        self, connection: Connection, on_return: Any = None, timeout: float = 30.0
    ) -> None:
        self.connection = connection
        self.timeout = timeout
        self.channel = connection.channel()
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._acked)
        self.channel.events["basic_nack"].add(self._nacked)
        if on_return is not None:
            self.channel.events["basic_return"].add(on_return)
        self._tag = 0
        # Delivery tag -> the event sent with `send_events` (None for any other message) and
        # when it was sent; in tag order.
        self._waiting: dict[int, tuple[Outgoing | None, float]] = {}
        self._confirmed: list[Outgoing] = []
        self._refused = False

    def _settled(self, delivery_tag: int, multiple: bool) -> list[Outgoing]:
        """Forget the messages an ack or nack settles; the events among them."""
        tags = [delivery_tag]
        if multiple:
            tags = list(itertools.takewhile(lambda tag: tag <= delivery_tag, self._waiting))
        settled = (self._waiting.pop(tag, (None, 0.0))[0] for tag in tags)
        return [event for event in settled if event is not None]

    def _acked(self, delivery_tag: int, multiple: bool) -> None:
        self._confirmed += self._settled(delivery_tag, multiple)

    def _nacked(self, delivery_tag: int, multiple: bool) -> None:
        self._refused = True
        self._settled(delivery_tag, multiple)  # not confirmed: they stay unmarked

    def publish(self, events: Sequence[Outgoing]) -> None:
        """Returns once the broker confirmed them all (and whatever was sent before)."""
        for event in events:
            self.send(_event_message(event), EVENTS.name, event.type, mandatory=True)
        self.confirmed()

    def send_events(self, events: Sequence[Outgoing]) -> None:
        """Publish without waiting; `collect` returns them once the broker has confirmed them."""
        for event in events:
            self.send(_event_message(event), EVENTS.name, event.type, mandatory=True, event=event)

    def send(
        self,
        message: amqp_message.Message,
        exchange: str,
        routing_key: str,
        *,
        mandatory: bool = False,
        event: Outgoing | None = None,
    ) -> None:
        """Publish without waiting; `confirmed` waits for this one with the others."""
        self.channel.basic_publish(
            message, exchange=exchange, routing_key=routing_key, mandatory=mandatory
        )
        self._tag += 1
        self._waiting[self._tag] = (event, time.monotonic())

    def collect(self) -> list[Outgoing]:
        """The events of `send_events` confirmed since the last call, reading whatever confirms
        have arrived without waiting for more. Raises on a nack, or once the oldest unconfirmed
        message has waited `timeout`."""
        while self._waiting and pending(self.connection):
            try:
                self.connection.drain_events(timeout=KEEP_ALIVE_READ_SECONDS)
            except (TimeoutError, socket.timeout):  # noqa: UP041 - py-amqp raises socket.timeout
                break
        self._check_refused()
        if self._waiting:
            _event, oldest = next(iter(self._waiting.values()))
            if time.monotonic() - oldest > self.timeout:
                raise TimeoutError(f"{len(self._waiting)} publisher confirms did not come")
        return self.collected()

    def collected(self) -> list[Outgoing]:
        """The events confirmed so far and not yet handed out, without reading the connection
        (which may be gone: what the broker confirmed before it went away stays confirmed)."""
        confirmed, self._confirmed = self._confirmed, []
        return confirmed

    def confirmed(self) -> None:
        """Wait until the broker has confirmed everything sent; raise on a nack or timeout."""
        deadline = time.monotonic() + self.timeout
        while self._waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self._waiting)} publisher confirms did not come")
            try:
                self.connection.drain_events(timeout=left)
            except (TimeoutError, socket.timeout):  # noqa: UP041 - py-amqp raises socket.timeout
                continue
        self._check_refused()

    def _check_refused(self) -> None:
        if self._refused:
            self._refused = False
            raise amqp_errors.MessageNacked("the broker refused an event")


def _event_message(event: Outgoing) -> amqp_message.Message:
    return amqp_message.Message(
        event.body.encode("utf-8"),
        content_type=CLOUDEVENTS_JSON,
        content_encoding="utf-8",
        delivery_mode=2,
        message_id=event.id,
        type=event.type,
    )


class Unconfirmed:
    """`ConfirmedBatches`' stand-in on the embedded transport, which has no confirms: an event
    counts as confirmed once the transport took it."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self._confirmed: list[Outgoing] = []

    def publish(self, events: Sequence[Outgoing]) -> None:
        for event in events:
            publish_event(self.producer, event.id, event.type, event.body)

    def send_events(self, events: Sequence[Outgoing]) -> None:
        self.publish(events)
        self._confirmed += events

    def collect(self) -> list[Outgoing]:
        return self.collected()

    def collected(self) -> list[Outgoing]:
        confirmed, self._confirmed = self._confirmed, []
        return confirmed

    def confirmed(self) -> None:
        pass
