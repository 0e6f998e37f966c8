"""A registration's life as stored, for replay (R17): its history rows in the order they were
decided, each with the archived message that caused it. The same SQL on both databases."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Engine, Select, Text, cast, func, select

from worker.adapters.store import port
from worker.adapters.store import tables as t
from worker.adapters.store.rows import DOCUMENT, stored
from worker.domain.schedule import Timer

h, i, r = t.history.c, t.inbox.c, t.registrations.c


def chosen(
    column: ColumnElement[int], registration_ids: Sequence[int], every: bool
) -> ColumnElement[bool]:
    """`column` among these ids, ascending; `every`: they are every id in their range, so a
    range (two bounds, an index range scan) says it, not a list of a thousand parameters."""
    if every:
        return column.between(registration_ids[0], registration_ids[-1])
    return column.in_(list(registration_ids))


def statement(registration_ids: Sequence[int], every: bool = False) -> Select[Any]:
    """The lives of these registrations, one after the other, each in the order decided."""
    return (
        select(
            h.registration_id,
            h.business_date,
            h.cause_id,
            h.cause_type,
            cast(h.events, Text).label("events"),  # parsed by orjson, not row by row
            i.body,
            i.publisher,
        )
        .select_from(t.history.outerjoin(t.inbox, i.message_id == h.cause_id))
        .where(chosen(h.registration_id, registration_ids, every))
        .order_by(h.registration_id, h.id)
    )


def read(db: Connection, registration_id: int) -> list[port.Lived]:
    rows = db.execute(statement([registration_id])).all()
    return next((life for _, life in by_registration(rows)), [])


def by_registration(rows: Iterable[Any]) -> Iterator[tuple[int, list[port.Lived]]]:
    """Rows of `statement`, grouped into one life per registration (unpacked as tuples: a
    million lives are read through here)."""
    current: int | None = None
    life: list[port.Lived] = []
    loads, make = orjson.loads, port.Lived
    for registration_id, day, cause_id, cause_type, events, body, publisher in rows:
        if registration_id != current:
            if current is not None:
                yield current, life
            current, life = registration_id, []
        life.append(
            make(day, cause_id, cause_type, tuple(loads(events)) if events else (), body, publisher)
        )
    if current is not None:
        yield current, life


def registration_of(db: Connection, message_id: str) -> int | None:
    found = db.execute(select(i.registration_id).where(i.message_id == message_id)).first()
    return found[0] if found else None


def timers_of(
    db: Connection, registration_ids: Sequence[int], every: bool = False
) -> dict[int, dict[Timer, bool]]:
    """Each registration's stored timers, and whether each fired (`every`: as in `chosen`)."""
    c = t.timers.c
    query = select(c.registration_id, c.due_on, c.kind, c.deadline, c.offset_days, c.fired_at)
    found: dict[int, dict[Timer, bool]] = {i: {} for i in registration_ids}
    rows = db.execute(query.where(chosen(c.registration_id, registration_ids, every))).all()
    for registration_id, due, kind, deadline, offset_days, fired_at in rows:
        found[registration_id][Timer(due, kind, deadline, offset_days)] = fired_at is not None
    return found


class LifeQueries:
    """Mixed into the SQL store: lives read for `kmo-worker replay --what-if`, off the hot path."""

    engine: Engine

    def ids(self) -> tuple[int, int]:
        with self.engine.connect() as db:
            low, high = db.execute(select(func.min(r.id), func.max(r.id))).one()
        return int(low or 0), int(high or 0)

    def lives(
        self,
        after_id: int,
        limit: int,
        *,
        states: Sequence[str] = (),
        number: str | None = None,
        up_to: int | None = None,
    ) -> list[port.Life]:
        query = select(r.id, r.version, DOCUMENT).where(r.id > after_id)
        if up_to is not None:
            query = query.where(r.id <= up_to)
        if states:
            query = query.where(r.state.in_(list(states)))
        if number is not None:
            query = query.where(r.registration_number == number)
        every = not states and number is None  # no id in the range is left out
        with self.engine.connect() as db:
            found = [stored(row) for row in db.execute(query.order_by(r.id).limit(limit)).all()]
            ids = [s.id for s in found]
            lived = dict(by_registration(db.execute(statement(ids, every)).all())) if ids else {}
            timers = timers_of(db, ids, every) if ids else {}
        return [port.Life(s, lived.get(s.id, []), timers.get(s.id, {})) for s in found]
