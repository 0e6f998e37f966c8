"""Reads and writes of one transaction: registrations, history, inbox, outbox and timers.

Only Core statements: the hot path builds no ORM objects. A registration row carries the domain
`Registration` as a JSON document plus the columns that queries need (key, number, state).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from worker.adapters import tables as t
from worker.contracts.common import Key
from worker.domain.model import Registration
from worker.domain.schedule import Timer

PREFIX = {"training": "DV.O", "advice": "DV.A"}


@dataclass(frozen=True)
class Stored:
    id: int
    version: int
    registration: Registration


@dataclass(frozen=True)
class PendingEvent:
    id: int
    event_id: str
    type: str
    body: str


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


class StaleRegistrationError(Exception):
    """Another transaction changed the registration since it was read; retry the message."""


def history_of(db: Connection, registration_id: int) -> list[dict[str, object]]:
    query = select(t.history).where(t.history.c.registration_id == registration_id)
    return [dict(row._mapping) for row in db.execute(query.order_by(t.history.c.id))]


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


@dataclass(frozen=True)
class DueTimer:
    id: int
    registration_id: int
    timer: Timer


def claim_due(
    db: Connection,
    today: dt.date,
    limit: int,
    *,
    skip_locked: bool,
    exclude: Iterable[int] = (),
) -> list[DueTimer]:
    """Due, unfired timers in due order. On PostgreSQL the rows stay locked until commit and
    other replicas skip them, so each timer fires once."""
    query = (
        select(t.timers.c.id, t.timers.c.registration_id, *_TIMER)
        .where(t.timers.c.fired_at.is_(None), t.timers.c.due_on <= today)
        .order_by(t.timers.c.due_on, t.timers.c.id)
        .limit(limit)
    )
    skipped = list(exclude)
    if skipped:
        query = query.where(t.timers.c.id.not_in(skipped))
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return [DueTimer(r.id, r.registration_id, _timer(r)) for r in db.execute(query)]


def count_by_state(db: Connection) -> dict[str, int]:
    query = select(t.registrations.c.state, func.count()).group_by(t.registrations.c.state)
    return {state: int(count) for state, count in db.execute(query)}


# -- batches: one statement for many rows -------------------------------------------------------

KeyTuple = tuple[str, str, str, str]


def key_tuple(key: Key) -> KeyTuple:
    return (
        key.enterprise_number,
        key.unit.kind,
        getattr(key.unit, "department_id", ""),
        key.service,
    )


def load_many(db: Connection, keys: Iterable[KeyTuple]) -> dict[KeyTuple, Stored]:
    """The registrations for these keys, locked until commit. Rows are locked in id order, so
    two replicas locking overlapping batches cannot deadlock on each other."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    c = t.registrations.c
    query = (
        select(
            c.id,
            c.version,
            c.document,
            c.enterprise_number,
            c.unit_kind,
            c.department_id,
            c.service,
        )
        .where(tuple_(c.enterprise_number, c.unit_kind, c.department_id, c.service).in_(wanted))
        .order_by(c.id)
        .with_for_update()
    )
    return {
        (r.enterprise_number, r.unit_kind, r.department_id, r.service): Stored(
            r.id, r.version, Registration.model_validate(r.document)
        )
        for r in db.execute(query)
    }


def load_many_by_id(db: Connection, ids: Iterable[int], *, skip_locked: bool) -> dict[int, Stored]:
    """Registrations by id, locked; with `skip_locked`, rows another transaction holds are left
    out (the caller tries them again later)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    c = t.registrations.c
    query = (
        select(c.id, c.version, c.document)
        .where(c.id.in_(wanted))
        .order_by(c.id)
        .with_for_update(skip_locked=skip_locked)
    )
    return {
        r.id: Stored(r.id, r.version, Registration.model_validate(r.document))
        for r in db.execute(query)
    }


def seen_many(db: Connection, message_ids: Iterable[str]) -> set[str]:
    wanted = list(set(message_ids))
    if not wanted:
        return set()
    query = select(t.inbox.c.message_id).where(t.inbox.c.message_id.in_(wanted))
    return set(db.execute(query).scalars())


def allocate_numbers(db: Connection, service: str, count: int) -> list[str]:
    """`count` consecutive registration numbers. The counter row stays locked until commit, so
    the numbers a batch does not use can be given back with `return_numbers`."""
    counter = t.number_counters
    last = db.execute(
        update(counter)
        .where(counter.c.service == service)
        .values(last_value=counter.c.last_value + count)
        .returning(counter.c.last_value)
    ).scalar()
    if last is None:
        db.execute(insert(counter).values(service=service, last_value=count))
        last = count
    return [f"{PREFIX[service]}{n:06d}" for n in range(last - count + 1, last + 1)]


def return_numbers(db: Connection, service: str, count: int) -> None:
    if count:
        counter = t.number_counters
        db.execute(
            update(counter)
            .where(counter.c.service == service)
            .values(last_value=counter.c.last_value - count)
        )


def insert_registrations(
    db: Connection, registrations: Sequence[Registration], now: dt.datetime
) -> list[int]:
    if not registrations:
        return []
    rows = [
        {
            "enterprise_number": r.key.enterprise_number,
            "unit_kind": r.key.unit.kind,
            "department_id": getattr(r.key.unit, "department_id", ""),
            "service": r.key.service,
            "registration_number": r.number,
            "state": r.state.value,
            "version": 1,
            "document": r.model_dump(mode="json"),
            "updated_at": now,
        }
        for r in registrations
    ]
    statement = insert(t.registrations).returning(
        t.registrations.c.id, sort_by_parameter_order=True
    )
    return [int(i) for i in db.execute(statement, rows).scalars()]


def update_registrations(
    db: Connection, changes: Sequence[tuple[int, int, Registration]], now: dt.datetime
) -> None:
    """(id, version read, new registration). The version check guards SQLite, which has no
    row locks; on PostgreSQL the rows are locked already."""
    if not changes:
        return
    if db.dialect.name == "postgresql":
        # One statement whatever the count: a join against arrays.
        result = db.execute(
            text(
                "UPDATE registrations SET state = v.state, version = v.version + 1,"
                " document = CAST(v.document AS json), updated_at = :now"
                " FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS integer[]),"
                " CAST(:states AS text[]), CAST(:documents AS text[]))"
                " AS v(id, version, state, document)"
                " WHERE registrations.id = v.id AND registrations.version = v.version"
            ),
            {
                "now": now,
                "ids": [i for i, _, _ in changes],
                "versions": [v for _, v, _ in changes],
                "states": [r.state.value for _, _, r in changes],
                "documents": [r.model_dump_json() for _, _, r in changes],
            },
        )
        count = result.rowcount
    else:
        c = t.registrations.c
        statement = (
            update(t.registrations)
            .where(c.id == bindparam("b_id"), c.version == bindparam("b_version"))
            .values(
                state=bindparam("b_state"),
                version=bindparam("b_next"),
                document=bindparam("b_document"),
                updated_at=bindparam("b_now"),
            )
        )
        rows = [
            {
                "b_id": registration_id,
                "b_version": version,
                "b_next": version + 1,
                "b_state": r.state.value,
                "b_document": r.model_dump(mode="json"),
                "b_now": now,
            }
            for registration_id, version, r in changes
        ]
        count = db.execute(statement, rows).rowcount
    if count != len(changes):
        raise StaleRegistrationError(", ".join(r.number for _, _, r in changes))


def change_timers(
    db: Connection, cancel: Sequence[tuple[int, Timer]], add: Sequence[tuple[int, Timer]]
) -> None:
    """Cancel timers a state no longer wants (only unfired ones: fired ones stay as a record)
    and add new ones; one that exists already, fired or not, is not added again."""
    c = t.timers.c
    if cancel and db.dialect.name == "postgresql":
        # One statement whatever the count: a join against four arrays.
        db.execute(
            text(
                "DELETE FROM timers USING unnest("
                "CAST(:ids AS bigint[]), CAST(:kinds AS text[]), CAST(:deadlines AS date[]),"
                " CAST(:offsets AS integer[])) AS v(registration_id, kind, deadline, offset_days)"
                " WHERE timers.registration_id = v.registration_id AND timers.kind = v.kind"
                " AND timers.deadline = v.deadline AND timers.offset_days = v.offset_days"
                " AND timers.fired_at IS NULL"
            ),
            {
                "ids": [i for i, _ in cancel],
                "kinds": [x.kind for _, x in cancel],
                "deadlines": [x.deadline for _, x in cancel],
                "offsets": [x.offset_days for _, x in cancel],
            },
        )
    elif cancel:
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
        upsert = pg_insert if db.dialect.name == "postgresql" else sqlite_insert
        adding = upsert(t.timers).on_conflict_do_nothing(
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


def add_history_many(db: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        db.execute(insert(t.history), list(rows))


def remember_many(db: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        db.execute(insert(t.inbox), list(rows))


def mark_fired_many(db: Connection, timer_ids: Sequence[int], now: dt.datetime) -> None:
    if not timer_ids:
        return
    if db.dialect.name == "postgresql":  # one array parameter, not one per id
        db.execute(
            text("UPDATE timers SET fired_at = :now WHERE id = ANY(CAST(:ids AS bigint[]))"),
            {"now": now, "ids": list(timer_ids)},
        )
    else:
        db.execute(update(t.timers).where(t.timers.c.id.in_(timer_ids)).values(fired_at=now))
