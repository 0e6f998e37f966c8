"""Sending events to `kmo.events` with publisher confirms, without waiting per message.

`ConfirmedSender` puts a channel of its own in confirm mode and keeps the delivery tag of every
message it sent until the broker settles it: `publish` waits for a batch, `send_events` does not
wait at all and `collect` hands the events back once confirmed. `UnconfirmedSender` stands in for
it on the embedded transport, which has no confirms.

A batch of events goes to the socket in one write (`wire.frame_packer`). The connection is still
read on every turn of the loop (`collect`), where a `connection.blocked` notice would arrive.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Sequence
from typing import Any

from amqp import basic_message as amqp_message
from amqp import exceptions as amqp_errors
from amqp import spec
from amqp.serialization import dumps
from kombu.connection import Connection
from kombu.messaging import Producer

from worker.adapters import broker, wire
from worker.contracts.envelope import Outgoing


class ConfirmedSender:
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
        self._frames = wire.Frames()
        self._write_frames = wire.frame_packer(connection, self._frames)
        self._publish_args: dict[tuple[str, str, bool], bytes] = {}
        # Delivery tag -> the event sent with `send_events` (None for any other message) and
        # when it was sent; in tag order.
        self._waiting: dict[int, tuple[Outgoing | None, float]] = {}
        self._confirmed: list[Outgoing] = []
        self._refused = False
        self._held = False  # the broker blocks publishing: confirms cannot be overdue

    def hold(self) -> None:
        """The broker blocked the connection (`connection.blocked`: a memory or disk alarm):
        what was sent is not read by the broker until it unblocks, so no confirm is overdue."""
        self._held = True

    def resume(self) -> None:
        """Unblocked: the confirms' time runs again from now."""
        self._held = False
        now = time.monotonic()
        self._waiting = {tag: (event, now) for tag, (event, _) in self._waiting.items()}

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
        self._send_together(events, keep=False)
        self.confirmed()

    def send_events(self, events: Sequence[Outgoing]) -> None:
        """Publish without waiting; `collect` returns them once the broker has confirmed them."""
        self._send_together(events, keep=True)

    def _send_together(self, events: Sequence[Outgoing], keep: bool) -> None:
        """Every event's frames in one socket write. Their delivery tags are counted only once
        the write went through: the broker numbers what it received, and a write that failed
        ends the connection, and this channel with it."""
        if not events:
            return
        channel_id = self.channel.channel_id
        if self.channel.connection is None:
            raise amqp_errors.RecoverableConnectionError("publish: the channel is closed")
        try:
            for event in events:
                self._write_frames(
                    1,
                    channel_id,
                    spec.Basic.Publish,
                    self._arguments(broker.EVENTS_EXCHANGE.name, event.type, mandatory=True),
                    _event_message(event),
                )
            frames = b"".join(self._frames.chunks)
        finally:
            self._frames.chunks.clear()
        wire.write(self.connection, frames)
        sent = time.monotonic()
        for event in events:
            self._tag += 1
            self._waiting[self._tag] = (event if keep else None, sent)

    def _arguments(self, exchange: str, routing_key: str, mandatory: bool) -> bytes:
        """basic.publish's arguments, encoded once per exchange and routing key."""
        key = (exchange, routing_key, mandatory)
        encoded = self._publish_args.get(key)
        if encoded is None:
            encoded = dumps("Bssbb", (0, exchange, routing_key, mandatory, False))
            self._publish_args[key] = encoded
        return encoded

    def send(self, message: amqp_message.Message, exchange: str, routing_key: str) -> None:
        """Any one message, without waiting (the benchmark's load generator publishes this
        way); `confirmed` waits for it with the others."""
        self.channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
        self._tag += 1
        self._waiting[self._tag] = (None, time.monotonic())

    def collect(self) -> list[Outgoing]:
        """The events of `send_events` confirmed since the last call, reading whatever confirms
        have arrived without waiting for more. Raises on a nack, or once the oldest unconfirmed
        message has waited `timeout`."""
        broker.read_arrived(self.connection, enough=lambda: not self._waiting)
        self._check_refused()
        overdue = self._overdue()
        if overdue is not None:
            raise TimeoutError(overdue)
        return self.collected()

    def _overdue(self) -> str | None:
        if not self._waiting or self._held:
            return None
        _event, oldest = next(iter(self._waiting.values()))
        if time.monotonic() - oldest > self.timeout:
            return f"{len(self._waiting)} publisher confirms did not come"
        return None

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
        content_type=broker.CLOUDEVENTS_JSON,
        content_encoding="utf-8",
        delivery_mode=2,
        message_id=event.id,
        type=event.type,
    )


class UnconfirmedSender:
    """`ConfirmedSender`'s stand-in on the embedded transport, which has no confirms: an event
    counts as confirmed once the transport took it."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self._confirmed: list[Outgoing] = []

    def publish(self, events: Sequence[Outgoing]) -> None:
        for event in events:
            broker.publish_event(self.producer, event.id, event.type, event.body)

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


class MemorySender:
    """A sender for tests: keeps what it was given, confirms it at once, or refuses (`refuse`)
    and fails (`fail`) as the broker can."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.refuse = False
        self.fail = False
        self._confirmed: list[Outgoing] = []

    def publish(self, events: Sequence[Outgoing]) -> None:
        self.send_events(events)
        self.confirmed()

    def send_events(self, events: Sequence[Outgoing]) -> None:
        if self.fail:
            raise amqp_errors.RecoverableConnectionError("the broker went away")
        self.sent += events
        if not self.refuse:
            self._confirmed += events

    def collect(self) -> list[Outgoing]:
        self.confirmed()
        return self.collected()

    def collected(self) -> list[Outgoing]:
        confirmed, self._confirmed = self._confirmed, []
        return confirmed

    def confirmed(self) -> None:
        if self.refuse:
            raise amqp_errors.MessageNacked("the broker refused an event")
