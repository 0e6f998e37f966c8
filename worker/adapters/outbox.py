"""The outbox: events committed with the state change that caused them, until the relay has
published them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update

from worker.adapters import tables as t


@dataclass(frozen=True)
class PendingEvent:
    id: int
    event_id: str
    type: str
    body: str


def enqueue(db: Connection, events: Iterable[tuple[str, str, str]], now: dt.datetime) -> None:
    """(event id, type, body) rows; committed with the state change that caused them."""
    rows = [
        {"event_id": event_id, "type": type_name, "body": body, "created_at": now}
        for event_id, type_name, body in events
    ]
    if rows:
        db.execute(insert(t.outbox), rows)


def mark_sent(db: Connection, ids: Sequence[int], now: dt.datetime) -> None:
    if ids:
        db.execute(update(t.outbox).where(t.outbox.c.id.in_(ids)).values(sent_at=now))


def outbox_backlog(db: Connection) -> int:
    query = select(func.count()).select_from(t.outbox).where(t.outbox.c.sent_at.is_(None))
    return int(db.execute(query).scalar_one())


def outbox_stats(db: Connection) -> tuple[int, dt.datetime | None]:
    """Pending events and the creation time of the oldest (the partial index holds only them)."""
    query = select(func.count(), func.min(t.outbox.c.created_at)).where(
        t.outbox.c.sent_at.is_(None)
    )
    count, oldest = db.execute(query).one()
    if isinstance(oldest, dt.datetime) and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)  # SQLite keeps no zone
    return int(count), oldest
