"""The outbox relay: publishes committed events with publisher confirms, then marks them sent.

Events reach the broker two ways. The consumer and the sweep publish the events of each
transaction they commit right after the commit, without waiting for the broker's confirms
(`confirms.ConfirmedBatches.send_events`); the consumer collects the confirms as they come and marks
those events sent with its next transaction (`mark_sent` when it has nothing else to write).
`flush` picks up what nobody sent: events of a process that died between its commit and its
publish, or whose publish failed. It only takes events older than `LEFT_OVER_AFTER`, so it never
races a live replica that is sending its own fresh events (which would publish them twice).

Either way an event is published before it is marked: a crash in between publishes it again
with the same id and body. At least once, never zero times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine

from worker.adapters import outbox
from worker.contracts.envelope import Outgoing

BATCH = 500
LEFT_OVER_AFTER = dt.timedelta(seconds=5)  # far longer than a publish and its confirm take

PublishBatch = Callable[[list[Outgoing]], None]


def mark_sent(engine: Engine, event_ids: Sequence[str], now: dt.datetime) -> None:
    with engine.begin() as db:
        _no_fsync_wait(db)
        outbox.mark_sent(db, event_ids, now)


def flush(engine: Engine, publish: PublishBatch, now: Callable[[], dt.datetime]) -> int:
    """Publish every left-over event, a batch per transaction; returns how many went out."""
    sent = 0
    while True:
        with engine.begin() as db:
            _no_fsync_wait(db)
            # Locked until commit: another replica's relay skips them.
            skip = engine.dialect.name == "postgresql"
            rows = outbox.left_over(db, now() - LEFT_OVER_AFTER, BATCH, skip_locked=skip)
            if rows:
                publish(rows)
                outbox.mark_sent(db, [row.id for row in rows], now())
        sent += len(rows)
        if len(rows) < BATCH:
            return sent


def _no_fsync_wait(db: Connection) -> None:
    # Losing a "sent" mark in a crash only means publishing the event again, with the same id
    # and body, which at-least-once allows: no need to wait for the fsync.
    if db.dialect.name == "postgresql":
        db.exec_driver_sql("SET LOCAL synchronous_commit = off")
