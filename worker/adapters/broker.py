"""RabbitMQ (or the embedded kombu transport): what it can do, topology, connections, acks,
publishing inbound messages and dead letters.

What the transport can do is decided once (`capabilities`); nothing else asks which one runs.
The consumer and the publisher use separate connections: py-amqp drains deliveries while it waits
for a publisher confirm, so confirming on the consuming connection re-enters the callback.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from amqp import exceptions as amqp_errors
from kombu import exceptions as kombu_errors
from kombu.connection import Connection
from kombu.entity import Exchange, Queue, binding
from kombu.messaging import Producer

from worker import __version__
from worker.adapters import embedded, wire
from worker.config import Settings
from worker.contracts import dead_letters

INBOUND_EXCHANGE = Exchange("kmo.inbound", type="topic", durable=True)
EVENTS_EXCHANGE = Exchange("kmo.events", type="topic", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("kmo.dead-letter", type="topic", durable=True)
DEAD_LETTER_QUEUE = "kmo.dead-letter"
CLOUDEVENTS_JSON = "application/cloudevents+json"
REST_OF_FRAME_SECONDS = 0.001  # a frame whose first bytes have arrived: the rest is near
EMBEDDED_POLL_SECONDS = 0.05  # the filesystem transport polls its folder; keep latency low


@dataclass(frozen=True)
class Capabilities:
    """What the transport can do: RabbitMQ all of it, kombu's filesystem transport (the embedded
    default) none of it."""

    embedded: bool
    confirms: bool  # publisher confirms, and returns of unroutable `mandatory` messages
    multiple_ack: bool  # one ack settles every earlier delivery of the channel
    heartbeats: bool
    checks_user_id: bool  # a message's `user_id` must be the connection's own user


def capabilities(settings: Settings) -> Capabilities:
    amqp = not settings.is_embedded_broker
    return Capabilities(not amqp, confirms=amqp, multiple_ack=amqp, heartbeats=amqp,
                        checks_user_id=amqp)  # fmt: skip


@dataclass(frozen=True)
class Topology:
    inbound: Queue
    downstream: tuple[Queue, ...]
    dead_letters: Queue

    @property
    def queues(self) -> tuple[Queue, ...]:
        return (self.inbound, *self.downstream, self.dead_letters)


def topology(settings: Settings) -> Topology:
    quorum = not capabilities(settings).embedded and settings.queue_type == "quorum"
    arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    inbound_arguments = dict(arguments)
    if quorum:
        # A message that kills the worker every time it is delivered (it never gets to ack or
        # dead-letter it) is moved to kmo.dead-letter by the broker after a few deliveries,
        # instead of looping forever; at-least-once, so the move itself cannot lose it.
        inbound_arguments |= {
            "x-delivery-limit": settings.delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
            "x-dead-letter-routing-key": dead_letters.DELIVERY_LIMIT,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def queue(name: str, exchange: Exchange, keys: list[str], args: dict[str, Any]) -> Queue:
        bindings = [binding(exchange, routing_key=key) for key in keys]
        return Queue(name, bindings=bindings, durable=True, queue_arguments=args)

    downstream = tuple(
        queue(name, EVENTS_EXCHANGE, keys, arguments)
        for name, keys in sorted(settings.downstream_queues.items())
    )
    return Topology(
        inbound=queue(settings.inbound_queue, INBOUND_EXCHANGE, ["#"], inbound_arguments),
        downstream=downstream,
        dead_letters=queue(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, ["#"], arguments),
    )


Blocked = Callable[[str], None]


def connect(
    settings: Settings,
    *,
    confirms: bool = False,
    on_blocked: Blocked | None = None,
    on_unblocked: Callable[[], None] | None = None,
) -> Connection:
    """`on_blocked(reason)` and `on_unblocked()`: RabbitMQ's `connection.blocked` notices, given
    while the connection is read."""
    if capabilities(settings).embedded:
        folder = settings.broker_folder.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        folders = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),
            "polling_interval": EMBEDDED_POLL_SECONDS,
        }
        return Connection("filesystem://", transport=embedded.Transport, transport_options=folders)
    options: dict[str, Any] = {"confirm_publish": True} if confirms else {}
    if on_blocked is not None:  # py-amqp's Connection takes them; kombu passes them through
        options |= {"on_blocked": on_blocked, "on_unblocked": on_unblocked}
    secure = tls(settings)
    return Connection(
        settings.broker_url,
        transport_options=options,
        heartbeat=settings.heartbeat_seconds,
        ssl=secure if secure is not None else False,
        login_method="EXTERNAL" if secure is not None and settings.broker_tls_external else None,
    )


def tls(settings: Settings) -> dict[str, Any] | None:
    """py-amqp's TLS options for an `amqps://` URL (None: plain AMQP). The server's certificate
    is verified and so is its host name: py-amqp checks the name only when it is told the host
    (kombu once shipped amqps that verified nothing, celery/kombu 1149)."""
    url = urlparse(settings.broker_url)
    if url.scheme != "amqps":
        return None
    options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": url.hostname}
    if settings.broker_ca_file is not None:
        options["ca_certs"] = str(settings.broker_ca_file)  # else the system's trusted CAs
    if settings.broker_cert_file is not None:
        options["certfile"] = str(settings.broker_cert_file)
        options["keyfile"] = str(settings.broker_key_file or settings.broker_cert_file)
    return options


def declare(connection: Connection, topo: Topology) -> None:
    """Idempotent. The embedded transport keeps bindings per process, so every process that
    publishes declares the topology first."""
    channel = connection.default_channel
    for exchange in (INBOUND_EXCHANGE, EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE):
        exchange(channel).declare()
    for queue in topo.queues:
        queue(channel).declare()


def publish_event(producer: Producer, event_id: str, type_name: str, body: str) -> None:
    producer.publish(
        body.encode("utf-8"),
        exchange=EVENTS_EXCHANGE,
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
        exchange=INBOUND_EXCHANGE,
        routing_key=type_name,
        content_type=CLOUDEVENTS_JSON,
        content_encoding="utf-8",
        delivery_mode=2,
        **properties,
    )


def keep_alive(connection: Connection) -> None:
    """Heartbeats both ways on an AMQP connection: read what the broker sent meanwhile (its
    heartbeats among it; deliveries go to their consumer's callback) without waiting, then send
    one if it is due. py-amqp does neither by itself, and RabbitMQ closes a connection that has said
    nothing for two heartbeat intervals: an idle worker's connections were reset every minute or
    so. Raises (recoverable) when the broker's own heartbeats have stopped coming."""
    read_arrived(connection)
    connection.heartbeat_check()


def read_arrived(connection: Connection, enough: Callable[[], bool] = lambda: False) -> None:
    """Read what the broker has sent already (its callbacks get it: deliveries, confirms), and
    no more: never wait for the next frame. Stops early once `enough()` holds."""
    while not enough() and wire.bytes_waiting(connection):
        try:
            connection.drain_events(timeout=REST_OF_FRAME_SECONDS)
        except (TimeoutError, socket.timeout):  # noqa: UP041 - py-amqp raises socket.timeout
            return


def ack(messages: Sequence[Any], capabilities: Capabilities) -> None:
    """Ack deliveries of one channel, in order. On AMQP one `multiple` ack of the last covers
    every earlier one (those acked already too, which `multiple` allows); the embedded transport
    ignores `multiple`, so it gets one ack each."""
    unacked = [message for message in messages if not message.acknowledged]
    if not unacked:
        return
    if not capabilities.multiple_ack:
        for message in unacked:
            message.ack()
        return
    unacked[-1].ack(multiple=True)


# Errors after which a new connection may succeed: the broker went away or closed the channel.
# RabbitMQ cancels a consumer whose queue is deleted (or, for a classic mirrored queue, moved):
# py-amqp raises this from the read, as a recoverable error; the session starts again.
ConsumerCancelled = amqp_errors.ConsumerCancelled
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
    producer: Producer,
    delivery: Delivery,
    reason: dead_letters.Reason,
    error: str,
    now: dt.datetime,
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
        exchange=DEAD_LETTER_EXCHANGE,
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
