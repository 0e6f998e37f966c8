"""The outbound side, the only owner of publishing events: committed events out, confirms in,
"sent" marks back, and the relay of events nobody sent.

The events a transaction commits are published at once, without waiting for the broker's
confirms (`send`). Confirms are collected as they arrive (`collect`), while the loop handles the
next batch. The confirmed events wait here until a transaction marks them sent: the next batch's
(`ride_along`), or one of their own (`mark_sent`). Events nobody sent (a process that died
between commit and publish, a publish that failed) are published by `flush` once they are older
than `LEFT_OVER_AFTER`, so it never races a live replica sending its own fresh events.

Either way an event is published before it is marked: a crash in between publishes it again,
same id and body. At least once, never zero times. Marks outlive a broker session: what the
broker confirmed stays confirmed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Producer
from opentelemetry import trace
from sqlalchemy.exc import SQLAlchemyError

from worker.adapters import broker, confirms
from worker.adapters.store import port
from worker.contracts.envelope import Outgoing
from worker.observability import logs, tracing
from worker.observability import metrics as m
from worker.service.clock import Clock

LEFT_OVER_AFTER = dt.timedelta(seconds=5)  # far longer than a publish and its confirm take
MARK_WITHIN_SECONDS = 0.5  # confirmed events no batch took along by then are marked alone
RELAY_BATCH = 500  # left-over events per transaction

log = logs.get(__name__)
Sender = confirms.ConfirmedSender | confirms.UnconfirmedSender | confirms.MemorySender
DatabaseAway = Callable[[str, SQLAlchemyError], None]


class Outbound:
    def __init__(
        self,
        store: port.Store,
        clock: Clock,
        capabilities: broker.Capabilities,
        grace_seconds: float,
        database_away: DatabaseAway,
        traces: tracing.Tracing | None = None,
    ) -> None:
        self.store, self.clock, self.capabilities = store, clock, capabilities
        self.traces = traces or tracing.Tracing()
        self.grace_seconds = grace_seconds
        self._database_away = database_away
        self._sender: Sender | None = None
        self._marks: list[str] = []  # ids of events published and confirmed, not yet marked
        self._marks_since = 0.0  # when the oldest of them was confirmed (monotonic)
        self.blocked: str | None = None  # why the broker blocks publishing, while it does

    # -- the broker blocks publishing (a memory or disk alarm) -------------------------------

    def block(self, reason: str) -> None:
        """Nothing new is published until `unblock`: committed events wait in the outbox, the
        relay sends them then. The loop goes on consuming and committing."""
        self.blocked = reason
        if isinstance(self._sender, confirms.ConfirmedSender):
            self._sender.hold()

    def unblock(self) -> None:
        self.blocked = None
        if isinstance(self._sender, confirms.ConfirmedSender):
            self._sender.resume()

    # -- a broker session -----------------------------------------------------------------

    def open(self, connection: Connection, producer: Producer) -> None:
        """Events go out on a confirm channel of `connection`; where the transport has no
        confirms, through `producer`, one by one."""
        if self.capabilities.confirms:
            self.use(confirms.ConfirmedSender(connection, on_return=self._returned))
        else:
            self.use(confirms.UnconfirmedSender(producer))

    def use(self, sender: Sender) -> None:
        self._sender = sender

    def close(self) -> None:
        """What the broker confirmed before the session ended is kept for marking; the rest
        stays unmarked, for `flush`. A new session is told again if the broker blocks it."""
        if self._sender is not None:
            self._confirmed(self._sender.collected())
        self._sender = None
        self.blocked = None

    def _returned(self, _exception: Exception, exchange: str, routing_key: str, _: Any) -> None:
        """A `mandatory` event no queue took (the broker confirms it all the same)."""
        m.EVENTS_RETURNED.inc()
        log.error("event_unroutable", exchange=exchange, routing_key=routing_key)

    # -- events out, confirms in ------------------------------------------------------------

    def send(self, events: list[Outgoing]) -> None:
        """Events a transaction has just committed. A broker failure propagates (the session
        reconnects); the events stay in the outbox for `flush`. While the broker blocks
        publishing they are not sent: they wait, committed, for the relay."""
        if events and self.blocked is None:
            with self._publishing(events):
                self._connected().send_events(events)

    def collect(self) -> None:
        """Confirms that have arrived, without waiting for more."""
        if self._sender is not None:
            self._confirmed(self._sender.collect())

    def wait_for_confirms(self) -> None:
        if self.blocked is None:  # else they come once the broker unblocks
            self._connected().confirmed()
        self.collect()

    # -- marks ------------------------------------------------------------------------------

    def ride_along(self, tx: port.Transaction) -> None:
        """Put the marks waiting here into another transaction (a round trip saved); they come
        back if it does not commit."""
        marks, self._marks = self._marks, []
        if marks:
            tx.mark_sent(marks, self.clock.now())
            tx.on_rollback(lambda: self._give_back(marks))

    def mark_overdue(self) -> None:
        """Mark alone what has waited `MARK_WITHIN_SECONDS` for a batch to take it along: under
        load every batch takes the marks, and a transaction of their own would be one more."""
        if self._marks and time.monotonic() - self._marks_since >= MARK_WITHIN_SECONDS:
            self.mark_sent()

    def mark_sent(self) -> None:
        """Mark in a transaction of their own what no batch took along. A lost mark (a crash,
        the database away) only means that `flush` publishes that event again."""
        if not self._marks:
            return
        try:
            with self.store.transaction(durable=False) as tx:
                self.ride_along(tx)
        except SQLAlchemyError as error:
            self._database_away("relay_mark_failed", error)

    def _give_back(self, marks: list[str]) -> None:
        self._marks = marks + self._marks

    def _confirmed(self, confirmed: list[Outgoing]) -> None:
        if confirmed:
            if not self._marks:
                self._marks_since = time.monotonic()
            self._marks += [event.id for event in confirmed]
            _count(confirmed)

    # -- left over --------------------------------------------------------------------------

    def flush(self) -> int:
        """Publish every left-over event, a batch per transaction, waiting for the confirms;
        returns how many went out. Another replica's relay skips the rows this one holds."""
        if self.blocked is not None:
            return 0
        sent = 0
        try:
            while True:
                with self.store.transaction(durable=False) as tx:
                    rows = tx.left_over(self.clock.now() - LEFT_OVER_AFTER, RELAY_BATCH)
                    if rows:
                        with self._publishing(rows):
                            self._connected().publish(rows)
                        _count(rows)
                        tx.mark_sent([row.id for row in rows], self.clock.now())
                sent += len(rows)
                if len(rows) < RELAY_BATCH:
                    return sent
        except SQLAlchemyError as error:
            # The events stay in the outbox, committed; the next flush publishes them.
            self._database_away("relay_failed", error)
            return sent

    def finish(self) -> None:
        """On the way out: wait for the confirms, mark what was sent, publish what is left
        over, within the grace period."""
        self.wait_for_confirms()
        self.mark_sent()
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() < deadline and self.flush():
            pass

    def _publishing(self, events: list[Outgoing]) -> AbstractContextManager[object]:
        """A span for a publish of events, linked to the traces they carry (#19)."""
        if not self.traces.on:
            return contextlib.nullcontext()
        carried = (event.traceparent for event in events)
        span = self.traces.publishing(broker.EVENTS_EXCHANGE.name, carried, len(events))
        return trace.use_span(span, end_on_exit=True)

    def _connected(self) -> Sender:
        if self._sender is None:
            raise ConnectionError("no broker session: events stay in the outbox")
        return self._sender


def _count(events: list[Outgoing]) -> None:
    for event in events:
        m.EVENTS_PUBLISHED.labels(event.type).inc()
    m.LAST_PUBLISH.set(time.time())
