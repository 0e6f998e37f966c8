"""Registrations, their numbers and their history (SQLAlchemy Core, no ORM on the hot path).

A registration row carries the domain `Registration` as a JSON document plus the columns that
queries need (key, number, state). Reads and writes take many rows at once: a batch of messages
needs one statement per table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    tuple_,
    update,
)

from worker.adapters import tables as t
from worker.contracts.common import Department, Key
from worker.domain.model import Registration

PREFIX = {"training": "DV.O", "advice": "DV.A"}


@dataclass(frozen=True)
class Stored:
    id: int
    version: int
    registration: Registration


class StaleRegistrationError(Exception):
    """Another transaction changed the registration since it was read; retry the message."""


KeyTuple = tuple[str, str, str, str]

# The document as the text it is stored as: pydantic parses it in one step, without a dict between.
DOCUMENT = cast(t.registrations.c.document, Text).label("document")


def key_tuple(key: Key) -> KeyTuple:
    unit = key.unit
    department = unit.department_id if isinstance(unit, Department) else ""
    return (key.enterprise_number, unit.kind, department, key.service)


def find(db: Connection, enterprise_number: str) -> list[Stored]:
    query = (
        select(t.registrations.c.id, t.registrations.c.version, DOCUMENT)
        .where(t.registrations.c.enterprise_number == enterprise_number)
        .order_by(t.registrations.c.registration_number)
    )
    return [
        Stored(row.id, row.version, Registration.model_validate_json(row.document))
        for row in db.execute(query)
    ]


def history_of(db: Connection, registration_id: int) -> list[dict[str, object]]:
    query = select(t.history).where(t.history.c.registration_id == registration_id)
    return [dict(row._mapping) for row in db.execute(query.order_by(t.history.c.id))]


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
            DOCUMENT,
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
            r.id, r.version, Registration.model_validate_json(r.document)
        )
        for r in db.execute(query)
    }


def load_many_by_id(db: Connection, ids: Iterable[int]) -> dict[int, Stored]:
    """Registrations by id, locked in id order. (On PostgreSQL the sweep takes them with their
    timers instead: `timers.claim_due`.)"""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    c = t.registrations.c
    query = (
        select(c.id, c.version, DOCUMENT).where(c.id.in_(wanted)).order_by(c.id).with_for_update()
    )
    return {
        r.id: Stored(r.id, r.version, Registration.model_validate_json(r.document))
        for r in db.execute(query)
    }


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
    return numbers_up_to(service, last, count)


def numbers_up_to(service: str, last: int, count: int) -> list[str]:
    """The `count` numbers of a service that end with counter value `last`."""
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
    """(id, version read, new registration), a statement per row (SQLite; PostgreSQL takes
    `writes.apply`'s one statement). The version check guards SQLite, which has no row locks."""
    if not changes:
        return
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


def add_history_many(db: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        db.execute(insert(t.history), list(rows))


def count_by_state(db: Connection) -> dict[str, int]:
    query = select(t.registrations.c.state, func.count()).group_by(t.registrations.c.state)
    return {state: int(count) for state, count in db.execute(query)}
