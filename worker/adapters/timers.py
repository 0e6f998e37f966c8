"""Durable timers: due rows claimed by the sweep, changed with the state that wants them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from worker.adapters import registrations
from worker.adapters import tables as t
from worker.domain.model import Registration
from worker.domain.schedule import Timer

_TIMER = (t.timers.c.due_on, t.timers.c.kind, t.timers.c.deadline, t.timers.c.offset_days)


def _timer(row: Any) -> Timer:
    return Timer(row.due_on, row.kind, row.deadline, row.offset_days)


class DueTimer(NamedTuple):
    id: int
    registration_id: int
    timer: Timer


class Claimed(NamedTuple):
    dues: list[DueTimer]
    # Their registrations, locked with them (PostgreSQL); None: the caller reads them.
    registrations: dict[int, registrations.Stored] | None


def claim_due(
    db: Connection,
    today: dt.date,
    limit: int,
    *,
    skip_locked: bool,
    exclude: Iterable[int] = (),
) -> Claimed:
    """Due, unfired timers in due order.

    With `skip_locked` (PostgreSQL) each timer is claimed together with its registration: both
    rows stay locked until commit, and a timer whose row or registration another transaction
    holds (another replica's sweep, a consumer) is skipped, to be fired by a later sweep. So
    each timer fires once, nobody waits for anybody, and a sweep never holds a timer of a
    registration it does not hold (which could close a deadlock with whoever holds that one)."""
    c = t.timers.c
    query = (
        select(c.id, c.registration_id, *_TIMER)
        .where(c.fired_at.is_(None), c.due_on <= today)
        .order_by(c.due_on, c.id)
        .limit(limit)
    )
    skipped = list(exclude)
    if skipped:
        query = query.where(c.id.not_in(skipped))
    if not skip_locked:
        dues = [DueTimer(r.id, r.registration_id, _timer(r)) for r in db.execute(query)]
        return Claimed(dues, None)
    r = t.registrations.c
    query = (
        query.add_columns(r.version, registrations.DOCUMENT)
        .join(t.registrations, r.id == c.registration_id)
        .with_for_update(skip_locked=True, of=[t.timers, t.registrations])
    )
    dues, stored = [], {}
    # Rows unpacked as tuples: a sweep claims a million of them, and a named field costs a
    # lookup each time.
    rows: Iterable[Sequence[Any]] = db.execute(query)  # its added columns are not typed
    for timer_id, registration_id, due_on, kind, deadline, offset, version, document in rows:
        dues.append(DueTimer(timer_id, registration_id, Timer(due_on, kind, deadline, offset)))
        if registration_id not in stored:
            registration = Registration.model_validate_json(document)
            stored[registration_id] = registrations.Stored(registration_id, version, registration)
    return Claimed(dues, stored)


def change_timers(
    db: Connection, cancel: Sequence[tuple[int, Timer]], add: Sequence[tuple[int, Timer]]
) -> None:
    """Cancel timers a state no longer wants (only unfired ones: fired ones stay as a record)
    and add new ones; one that exists already, fired or not, is not added again. A statement
    per row: SQLite's path (PostgreSQL takes `writes.apply`'s one statement)."""
    c = t.timers.c
    if cancel:
        statement = delete(t.timers).where(
            c.registration_id == bindparam("b_id"),
            c.kind == bindparam("b_kind"),
            c.deadline == bindparam("b_deadline"),
            c.offset_days == bindparam("b_offset"),
            c.fired_at.is_(None),
        )
        db.execute(
            statement,
            [
                {"b_id": i, "b_kind": x.kind, "b_deadline": x.deadline, "b_offset": x.offset_days}
                for i, x in cancel
            ],
        )
    if add:
        adding = sqlite_insert(t.timers).on_conflict_do_nothing(
            index_elements=["registration_id", "kind", "deadline", "offset_days"]
        )
        db.execute(
            adding,
            [
                {
                    "registration_id": i,
                    "kind": x.kind,
                    "deadline": x.deadline,
                    "offset_days": x.offset_days,
                    "due_on": x.due,
                }
                for i, x in add
            ],
        )


def mark_fired_many(db: Connection, timer_ids: Sequence[int], now: dt.datetime) -> None:
    if not timer_ids:
        return
    db.execute(update(t.timers).where(t.timers.c.id.in_(timer_ids)).values(fired_at=now))


def timer_stats(db: Connection, today: dt.date) -> tuple[int, int]:
    """Unfired timers due by today, and those of them that were due before today."""
    due = t.timers.c.fired_at.is_(None) & (t.timers.c.due_on <= today)
    overdue = t.timers.c.due_on < today
    query = select(func.count(), func.count().filter(overdue)).where(due)
    total, late = db.execute(query).one()
    return int(total), int(late)
