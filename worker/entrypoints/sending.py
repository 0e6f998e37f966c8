"""The loop's side of the outbox: committed events out, confirms in, "sent" marks back.

The events a transaction commits are published at once, without waiting for the broker's
confirms (`send`); the confirms are collected as they arrive (`collect`), while the loop handles
the next batch, and the confirmed events' ids wait in `Sending` until a transaction marks them
sent: the next batch's (`take_marks`), or their own (`mark_sent`) when they have waited
`MARK_WITHIN_SECONDS` or the queue is idle. Events nobody sent (a process that died between
commit and publish, a publish that failed) are published again by `relay.flush` once they are old
enough (`publish_left_over`). Marks survive a broker session: what was confirmed stays confirmed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from worker.adapters import confirms
from worker.bootstrap import App
from worker.contracts.envelope import Outgoing
from worker.observability import logs
from worker.observability import metrics as m
from worker.service import relay

RELAY_EVERY_SECONDS = 1.0  # look for events other processes left, even when this one made none
MARK_WITHIN_SECONDS = 0.5  # confirmed events not marked by a batch by then are marked alone

log = logs.get(__name__)
Publisher = confirms.ConfirmedBatches | confirms.Unconfirmed
DatabaseAway = Callable[[str, SQLAlchemyError], None]


class Sending:
    def __init__(self, app: App, database_away: DatabaseAway) -> None:
        self.app = app
        self._database_away = database_away
        self._publisher: Publisher | None = None
        self._marks: list[str] = []  # ids of events published and confirmed, not yet marked
        self._marks_since = 0.0
        self._last_relay = 0.0

    # -- a broker session -----------------------------------------------------------------

    def connect(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def disconnect(self) -> None:
        """What the broker confirmed before the session ended is marked; what it did not
        confirm stays unmarked, for `relay.flush`."""
        if self._publisher is not None:
            self._confirmed(self._publisher.collected())
        self._publisher = None

    def returned(
        self, _exception: Exception, exchange: str, routing_key: str, _message: Any
    ) -> None:
        """A `mandatory` event no queue took (the broker confirms it all the same)."""
        m.EVENTS_RETURNED.inc()
        log.error("event_unroutable", exchange=exchange, routing_key=routing_key)

    # -- events out, confirms in ------------------------------------------------------------

    def send(self, events: list[Outgoing]) -> None:
        """The events a transaction has just committed. A broker failure propagates (the session
        reconnects); the events stay in the outbox for `relay.flush`."""
        if events:
            self._connected().send_events(events)

    def collect(self) -> None:
        """Confirms that have arrived, without waiting for more."""
        if self._publisher is not None:
            self._confirmed(self._publisher.collect())

    def wait_for_confirms(self) -> None:
        self._connected().confirmed()
        self.collect()

    # -- marks ------------------------------------------------------------------------------

    def take_marks(self) -> list[str]:
        """For the next transaction, which gives them back if it does not commit them."""
        marks, self._marks = self._marks, []
        return marks

    def give_back(self, marks: list[str]) -> None:
        self._marks = marks + self._marks

    def mark_due(self, idle: bool) -> None:
        if idle or time.monotonic() - self._marks_since >= MARK_WITHIN_SECONDS:
            self.mark_sent()

    def mark_sent(self) -> None:
        """Mark on their own what no batch took along. Lost marks (a crash, the database
        away) only mean that `relay.flush` publishes those events again, same ids and bodies."""
        marks = self.take_marks()
        if not marks:
            return
        try:
            relay.mark_sent(self.app.engine, marks, self.app.clock.now())
        except SQLAlchemyError as error:
            self.give_back(marks)
            self._database_away("relay_mark_failed", error)

    # -- left over --------------------------------------------------------------------------

    def publish_left_over(self, now: float) -> None:
        if now - self._last_relay >= RELAY_EVERY_SECONDS:
            self._last_relay = now
            self.flush()

    def flush(self) -> int:
        try:
            return relay.flush(self.app.engine, self._published, self.app.clock.now)
        except SQLAlchemyError as error:
            # The events stay in the outbox, committed; the next flush publishes them.
            self._database_away("relay_failed", error)
            return 0

    def finish(self) -> None:
        """On the way out: wait for the confirms, mark what was sent, publish what is left over,
        within the grace period."""
        self.wait_for_confirms()
        self.mark_sent()
        deadline = time.monotonic() + self.app.settings.shutdown_grace_seconds
        while time.monotonic() < deadline and self.flush():
            pass

    # -- helpers ----------------------------------------------------------------------------

    def _connected(self) -> Publisher:
        if self._publisher is None:
            raise ConnectionError("no broker session: events stay in the outbox")
        return self._publisher

    def _published(self, events: list[Outgoing]) -> None:
        """Publish and wait for the confirms (left-over events: `relay.flush` marks them)."""
        self._connected().publish(events)
        _count(events)

    def _confirmed(self, confirmed: list[Outgoing]) -> None:
        """Events the broker confirmed: counted, and marked sent with the next transaction."""
        if confirmed:
            if not self._marks:
                self._marks_since = time.monotonic()
            self._marks += [event.id for event in confirmed]
            _count(confirmed)


def _count(events: list[Outgoing]) -> None:
    for event in events:
        m.EVENTS_PUBLISHED.labels(event.type).inc()
    m.LAST_PUBLISH.set(time.time())
