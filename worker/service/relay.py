"""The outbox relay: publishes committed events with publisher confirms, then marks them sent.

A crash after the broker confirmed but before the mark commits publishes the event again on the
next run, with the same id and the same body: at least once, never zero times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine, select

from worker.adapters import outbox
from worker.adapters import tables as t

BATCH = 500

PublishBatch = Callable[[list[outbox.PendingEvent]], None]


def flush(engine: Engine, publish: PublishBatch, now: Callable[[], dt.datetime]) -> int:
    """Publish everything pending, a batch per transaction; returns how many events went out.

    `publish` returns only when the broker has confirmed the whole batch."""
    sent = 0
    while True:
        with engine.begin() as db:
            query = (
                select(t.outbox.c.id, t.outbox.c.event_id, t.outbox.c.type, t.outbox.c.body)
                .where(t.outbox.c.sent_at.is_(None))
                .order_by(t.outbox.c.id)
                .limit(BATCH)
            )
            if engine.dialect.name == "postgresql":
                # Another replica's relay skips rows this one is publishing.
                query = query.with_for_update(skip_locked=True)
                # Losing this commit in a crash only means publishing the batch again, with the
                # same ids and bodies, which at-least-once allows: no need to wait for the fsync.
                db.exec_driver_sql("SET LOCAL synchronous_commit = off")
            rows = [outbox.PendingEvent(*row) for row in db.execute(query)]
            if rows:
                publish(rows)
                outbox.mark_sent(db, [row.id for row in rows], now())
        sent += len(rows)
        if len(rows) < BATCH:
            return sent
