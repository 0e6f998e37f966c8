"""Retention in the database (R20): rows past their window deleted a batch at a time, each batch
its own short transaction, every selection by an index. The same SQL on both databases; on
PostgreSQL, `SKIP LOCKED` lets replicas prune side by side and never waits for a row a message
holds (SQLite has one writer and renders no locking clause).

Two tables are pruned from their head: outbox and dead-letter ids grow with their time, so a
pass walks the primary key from the oldest row and stops at the first row inside the window,
without an index on the time that every event would pay for.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, delete, func, select, text, update

from worker.adapters.store import port
from worker.adapters.store import tables as t
from worker.adapters.store.rows import DOCUMENT, stored

r, h, i, x = t.registrations.c, t.history.c, t.inbox.c, t.timers.c


def claim_to_erase(db: Connection, closed_by: dt.date, limit: int) -> list[port.Stored]:
    """Registrations closed on or before that day and not erased since, locked for the caller's
    transaction (R19), by `ix_registrations_to_erase`."""
    query = (
        select(r.id, r.version, DOCUMENT)
        .where(text(t.TO_ERASE), r.terminal_since <= closed_by)
        .order_by(r.terminal_since, r.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [stored(row) for row in db.execute(query)]


class RetentionQueries:
    """Mixed into the SQL store: each call one transaction."""

    engine: Engine

    def prune_unattached(self, handled_before: dt.datetime, limit: int) -> int:
        """Inbox ids of messages about no registration (invalid keys, unknown registrations)."""
        chosen = (
            select(i.message_id)
            .where(i.registration_id.is_(None), i.handled_at < handled_before)
            .order_by(i.handled_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._deleted(delete(t.inbox).where(i.message_id.in_(chosen.scalar_subquery())))

    def prune_fired(self, deadline_before: dt.date, limit: int) -> int:
        """Fired timers whose deadline is long past: one added again would do nothing."""
        chosen = (
            select(x.id)
            .where(x.fired_at.is_not(None), x.deadline < deadline_before)
            .order_by(x.deadline, x.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._deleted(delete(t.timers).where(x.id.in_(chosen.scalar_subquery())))

    def _deleted(self, statement: Any) -> int:
        """One statement, one transaction: the rows chosen and deleted without a round trip."""
        with self.engine.begin() as db:
            return int(db.execute(statement).rowcount)

    def prune_sent(self, sent_before: dt.datetime, after: int, limit: int) -> port.Pruned:
        """Events published before then, from the head of the outbox; unsent ones stay."""
        o = t.outbox.c
        return self._head(t.outbox, o.created_at, o.sent_at, sent_before, after, limit)

    def prune_dead_letters(self, before: dt.datetime, after: int, limit: int) -> port.Pruned:
        d = t.dead_letters.c
        return self._head(t.dead_letters, d.dead_lettered_at, None, before, after, limit)

    def _head(
        self,
        table: Table,
        made: Column[Any],
        done: Column[Any] | None,
        before: dt.datetime,
        after: int,
        limit: int,
    ) -> port.Pruned:
        """The next `limit` rows from the head, by primary key; of them, those done before
        `before` deleted as one range. Ids grow with time: the first row made inside the
        window ends the pass."""
        key = table.c.id
        kept = done if done is not None else made
        head = select(key, made).where(key > after).order_by(key).limit(limit)
        with self.engine.begin() as db:
            rows = db.execute(head).all()
            if not rows:
                return port.Pruned(0, None)
            last = rows[-1][0]
            old = (
                select(key)
                .where(key > after, key <= last, kept < before)
                .with_for_update(skip_locked=True)
            )
            deleted = int(db.execute(delete(table).where(key.in_(old.scalar_subquery()))).rowcount)
        ends = len(rows) < limit or any(_aware(row[1]) >= before for row in rows)
        return port.Pruned(deleted, None if ends else last)

    def prune_closed(self, closed_by: dt.date, today: dt.date, limit: int) -> tuple[int, int]:
        """The history, archive and timers of registrations closed on or before then (R20); the
        registration's own row stays, marked. How many registrations, and rows deleted."""
        query = (
            select(r.id)
            .where(text(t.TO_PRUNE), r.terminal_since <= closed_by)
            .order_by(r.terminal_since, r.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as db:
            ids = list(db.scalars(query))
            if not ids:
                return 0, 0
            causes = select(h.cause_id).where(h.registration_id.in_(ids)).scalar_subquery()
            deleted = db.execute(delete(t.inbox).where(i.message_id.in_(causes))).rowcount
            for table, column in ((t.history, h.registration_id), (t.timers, x.registration_id)):
                deleted += db.execute(delete(table).where(column.in_(ids))).rowcount
            db.execute(update(t.registrations).where(r.id.in_(ids)).values(pruned_on=today))
            return len(ids), int(deleted)

    def oldest_kept(self) -> dict[str, dt.datetime | dt.date | None]:
        """Per table, the time of the oldest row retention may delete and still keeps (for the
        history: the day the longest-closed registration not yet pruned closed)."""
        o, d = t.outbox.c, t.dead_letters.c
        queries = {
            "inbox": select(func.min(i.handled_at)).where(i.registration_id.is_(None)),
            "outbox": select(o.created_at).where(o.sent_at.is_not(None)).order_by(o.id).limit(1),
            "timers": select(func.min(x.deadline)).where(x.fired_at.is_not(None)),
            "dead_letters": select(d.dead_lettered_at).order_by(d.id).limit(1),
            "history": select(func.min(r.terminal_since)).where(text(t.TO_PRUNE)),
        }
        with self.engine.connect() as db:
            return {name: db.execute(query).scalar() for name, query in queries.items()}


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
