"""Reads and writes of one transaction: registrations, history, inbox, outbox and timers.

Only Core statements: the hot path builds no ORM objects. A registration row carries the domain
`Registration` as a JSON document plus the columns that queries need (key, number, state).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from worker.adapters import tables as t
from worker.contracts.common import Key, State
from worker.domain.model import Registration
from worker.domain.schedule import Timer

PREFIX = {"training": "DV.O", "advice": "DV.A"}


@dataclass(frozen=True)
class Stored:
    id: int
    version: int
    registration: Registration


@dataclass(frozen=True)
class HistoryEntry:
    cause_id: str
    cause_type: str
    business_date: dt.date
    rule: str
    note: str
    events: Sequence[str]


@dataclass(frozen=True)
class PendingEvent:
    id: int
    event_id: str
    type: str
    body: str


def _key_clause(key: Key) -> list[object]:
    department = getattr(key.unit, "department_id", "")
    return [
        t.registrations.c.enterprise_number == key.enterprise_number,
        t.registrations.c.unit_kind == key.unit.kind,
        t.registrations.c.department_id == department,
        t.registrations.c.service == key.service,
    ]


def load(db: Connection, key: Key, *, lock: bool) -> Stored | None:
    """The registration for a key; `lock` holds its row until commit (PostgreSQL) so two
    replicas never decide on the same registration at once."""
    query = select(t.registrations.c.id, t.registrations.c.version, t.registrations.c.document)
    query = query.where(and_(*_key_clause(key)))  # type: ignore[arg-type]
    if lock:
        query = query.with_for_update()
    row = db.execute(query).first()
    if row is None:
        return None
    return Stored(row.id, row.version, Registration.model_validate(row.document))


def load_by_id(
    db: Connection, registration_id: int, *, lock: bool, skip_locked: bool = False
) -> Stored | None:
    """With `skip_locked`, None also when another transaction holds the row."""
    query = select(t.registrations.c.version, t.registrations.c.document).where(
        t.registrations.c.id == registration_id
    )
    if lock:
        query = query.with_for_update(skip_locked=skip_locked)
    row = db.execute(query).first()
    if row is None:
        return None
    return Stored(registration_id, row.version, Registration.model_validate(row.document))


def find(db: Connection, enterprise_number: str) -> list[Stored]:
    query = (
        select(t.registrations.c.id, t.registrations.c.version, t.registrations.c.document)
        .where(t.registrations.c.enterprise_number == enterprise_number)
        .order_by(t.registrations.c.registration_number)
    )
    return [
        Stored(row.id, row.version, Registration.model_validate(row.document))
        for row in db.execute(query)
    ]


def next_number(db: Connection, service: str) -> str:
    """`DV.O` / `DV.A` + 6 digits, from a counter row per service (rolled back with the
    transaction, so a number is never lost to a failed message)."""
    counter = t.number_counters
    bumped = db.execute(
        update(counter)
        .where(counter.c.service == service)
        .values(last_value=counter.c.last_value + 1)
        .returning(counter.c.last_value)
    ).scalar()
    if bumped is None:
        db.execute(insert(counter).values(service=service, last_value=1))
        bumped = 1
    return f"{PREFIX[service]}{bumped:06d}"


def insert_registration(db: Connection, registration: Registration, now: dt.datetime) -> int:
    key = registration.key
    new_id = db.execute(
        insert(t.registrations)
        .values(
            enterprise_number=key.enterprise_number,
            unit_kind=key.unit.kind,
            department_id=getattr(key.unit, "department_id", ""),
            service=key.service,
            registration_number=registration.number,
            state=registration.state.value,
            version=1,
            document=registration.model_dump(mode="json"),
            updated_at=now,
        )
        .returning(t.registrations.c.id)
    ).scalar_one()
    return int(new_id)


def update_registration(
    db: Connection, stored: Stored, registration: Registration, now: dt.datetime
) -> None:
    """Optimistic check on top of the row lock: SQLite has no FOR UPDATE."""
    result = db.execute(
        update(t.registrations)
        .where(t.registrations.c.id == stored.id, t.registrations.c.version == stored.version)
        .values(
            state=registration.state.value,
            version=stored.version + 1,
            document=registration.model_dump(mode="json"),
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        raise StaleRegistrationError(registration.number)


class StaleRegistrationError(Exception):
    """Another transaction changed the registration since it was read; retry the message."""


def add_history(
    db: Connection,
    registration_id: int,
    before: State | None,
    after: State,
    entry: HistoryEntry,
    now: dt.datetime,
) -> None:
    db.execute(
        insert(t.history).values(
            registration_id=registration_id,
            recorded_at=now,
            business_date=entry.business_date,
            from_state=before.value if before else None,
            to_state=after.value,
            rule=entry.rule,
            note=entry.note,
            cause_id=entry.cause_id,
            cause_type=entry.cause_type,
            events=list(entry.events),
        )
    )


def history_of(db: Connection, registration_id: int) -> list[dict[str, object]]:
    query = select(t.history).where(t.history.c.registration_id == registration_id)
    return [dict(row._mapping) for row in db.execute(query.order_by(t.history.c.id))]


def seen(db: Connection, message_id: str) -> bool:
    query = select(t.inbox.c.message_id).where(t.inbox.c.message_id == message_id)
    return db.execute(query).first() is not None


def remember(
    db: Connection, message_id: str, type_name: str, outcome: str, now: dt.datetime
) -> None:
    db.execute(
        insert(t.inbox).values(
            message_id=message_id, type=type_name, handled_at=now, outcome=outcome
        )
    )


def enqueue(db: Connection, events: Iterable[tuple[str, str, str]], now: dt.datetime) -> None:
    """(event id, type, body) rows; committed with the state change that caused them."""
    rows = [
        {"event_id": event_id, "type": type_name, "body": body, "created_at": now}
        for event_id, type_name, body in events
    ]
    if rows:
        db.execute(insert(t.outbox), rows)


def pending_events(db: Connection, limit: int) -> list[PendingEvent]:
    query = (
        select(t.outbox.c.id, t.outbox.c.event_id, t.outbox.c.type, t.outbox.c.body)
        .where(t.outbox.c.sent_at.is_(None))
        .order_by(t.outbox.c.id)
        .limit(limit)
    )
    return [PendingEvent(row.id, row.event_id, row.type, row.body) for row in db.execute(query)]


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


def timer_stats(db: Connection, today: dt.date) -> tuple[int, int]:
    """Unfired timers due by today, and those of them that were due before today."""
    due = t.timers.c.fired_at.is_(None) & (t.timers.c.due_on <= today)
    overdue = t.timers.c.due_on < today
    query = select(func.count(), func.count().filter(overdue)).where(due)
    total, late = db.execute(query).one()
    return int(total), int(late)


_TIMER = (t.timers.c.due_on, t.timers.c.kind, t.timers.c.deadline, t.timers.c.offset_days)


def _timer(row: Any) -> Timer:
    return Timer(row.due_on, row.kind, row.deadline, row.offset_days)


def replace_timers(db: Connection, registration_id: int, wanted: frozenset[Timer]) -> None:
    """Cancel the pending timers the state no longer wants and add the new ones. Fired timers
    stay as a record, so a notice is never set twice for the same deadline and offset."""
    rows = db.execute(
        select(t.timers.c.id, t.timers.c.fired_at, *_TIMER).where(
            t.timers.c.registration_id == registration_id
        )
    ).all()
    existing = {_timer(r): r for r in rows}
    stale = [r.id for timer, r in existing.items() if r.fired_at is None and timer not in wanted]
    if stale:
        db.execute(delete(t.timers).where(t.timers.c.id.in_(stale)))
    new = [
        {
            "registration_id": registration_id,
            "kind": timer.kind,
            "deadline": timer.deadline,
            "offset_days": timer.offset_days,
            "due_on": timer.due,
        }
        for timer in wanted
        if timer not in existing
    ]
    if new:
        db.execute(insert(t.timers), new)


@dataclass(frozen=True)
class DueTimer:
    id: int
    registration_id: int
    timer: Timer


def claim_due(db: Connection, today: dt.date, limit: int, *, skip_locked: bool) -> list[DueTimer]:
    """Due, unfired timers in due order. On PostgreSQL the rows stay locked until commit and
    other replicas skip them, so each timer fires once."""
    query = (
        select(t.timers.c.id, t.timers.c.registration_id, *_TIMER)
        .where(t.timers.c.fired_at.is_(None), t.timers.c.due_on <= today)
        .order_by(t.timers.c.due_on, t.timers.c.id)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return [DueTimer(r.id, r.registration_id, _timer(r)) for r in db.execute(query)]


def mark_fired(db: Connection, timer_id: int, now: dt.datetime) -> None:
    db.execute(update(t.timers).where(t.timers.c.id == timer_id).values(fired_at=now))


def count_by_state(db: Connection) -> dict[str, int]:
    query = select(t.registrations.c.state, func.count()).group_by(t.registrations.c.state)
    return {state: int(count) for state, count in db.execute(query)}
