"""The queries of the back office and the operators (`find`, `explain`): the same SQL on both
databases (SQLAlchemy Core), each filter an index range in the order a page is read in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
)

from worker.adapters.store import port
from worker.adapters.store import tables as t
from worker.adapters.store.rows import DOCUMENT, stored
from worker.domain.schedule import TIMED, Timer

r, timers = t.registrations.c, t.timers
ARCHIVED = (
    *("message_id", "type", "handled_at", "outcome"),
    *("business_date", "routing_key", "publisher", "reason"),
)
DEAD_LETTERED = ("message_id", "type", "reason", "error", "service", "dead_lettered_at")


def _number_prefix(service: str) -> ColumnElement[bool]:
    """A service as a range of registration numbers (DV.O… training, DV.A… advice): the
    registration number's own index serves it, in the order a page is read in."""
    prefix = port.PREFIX[service]
    return and_(r.registration_number >= prefix, r.registration_number < _successor(prefix))


def _successor(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _filters(query: port.CaseQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.states:
        where.append(r.state.in_(query.states))
    if query.service:
        where.append(_number_prefix(query.service))
    if query.unit_kind:
        where.append(r.unit_kind == query.unit_kind)
    if query.bureau:
        where.append(r.bureau == query.bureau)
    if query.cycle is not None:
        where.append(r.cycle == query.cycle)
    for name, window in query.windows.items():
        if name != "next_due":
            where += _within(r[name], window)
    return where


def _within(column: Any, window: port.Window) -> list[ColumnElement[bool]]:
    where = []
    if window.after is not None:
        where.append(column >= window.after)
    if window.before is not None:
        where.append(column <= window.before)
    if not where:
        where.append(column.is_not(None))
    return where


def _next_due() -> Any:
    """The registration's earliest unfired timer (its timers' unique index leads with it)."""
    return (
        select(func.min(timers.c.due_on))
        .where(timers.c.registration_id == r.id, timers.c.fired_at.is_(None))
        .scalar_subquery()
    )


def search_statement(query: port.CaseQuery) -> Select[Any]:
    """The statement of one page (`limit` + 1 rows: the last says whether another page follows)."""
    order = query.order
    if order == "next_due":
        return _by_next_due(query)
    columns = (r.id, r.version, DOCUMENT, _next_due().label("next_due"))
    key = (r[order], r.registration_number) if order else (r.registration_number,)
    statement = select(*columns, *key).where(*_filters(query))
    if query.after:
        statement = statement.where(_past(key, query.after, order is not None))
    return statement.order_by(*key).limit(query.limit + 1)


def _by_next_due(query: port.CaseQuery) -> Select[Any]:
    """Registrations whose earliest unfired timer falls in the window, read in the order of the
    due timers' own index (due date, id): no registration is read that is not on the page."""
    earlier = timers.alias("earlier")
    due = timers.c
    first = ~exists(
        select(earlier.c.id).where(
            earlier.c.registration_id == due.registration_id,
            earlier.c.fired_at.is_(None),
            or_(
                earlier.c.due_on < due.due_on,
                and_(earlier.c.due_on == due.due_on, earlier.c.id < due.id),
            ),
        )
    )
    key = (due.due_on, due.id)
    statement = (
        select(r.id, r.version, DOCUMENT, due.due_on.label("next_due"), *key)
        .select_from(timers.join(t.registrations, r.id == due.registration_id))
        .where(due.fired_at.is_(None), first, *_within(due.due_on, query.windows["next_due"]))
        .where(*_filters(query))
    )
    if query.after:
        statement = statement.where(_past(key, query.after, True, number=False))
    return statement.order_by(*key).limit(query.limit + 1)


def _past(key: Sequence[Any], cursor: str, dated: bool, number: bool = True) -> Any:
    """Rows after the cursor in the page's order: `date|tie` for a dated order, else the number."""
    if not dated:
        return key[0] > cursor
    day, tie = cursor.split("|", 1)
    return tuple_(*key) > tuple_(dt.date.fromisoformat(day), tie if number else int(tie))


def _cursor(row: Any, dated: bool) -> str:
    *_, value, tie = row
    return f"{value.isoformat()}|{tie}" if dated else str(tie)


class CaseQueries:
    """Mixed into the SQL store: what people ask of the database, off the hot path."""

    engine: Engine

    def by_number(self, registration_number: str) -> port.Stored | None:
        query = select(r.id, r.version, DOCUMENT).where(
            r.registration_number == registration_number
        )
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return stored(row) if row else None

    def search(self, query: port.CaseQuery) -> list[port.Found]:
        dated = query.order is not None
        with self.engine.connect() as db:
            rows = db.execute(search_statement(query)).all()
        return [port.Found(stored(row), _date(row.next_due), _cursor(row, dated)) for row in rows]

    def case_file(self, found: port.Stored) -> port.CaseFile:
        key = found.registration.key
        h = t.history.c
        with self.engine.connect() as db:
            history = _rows(
                db, select(t.history).where(h.registration_id == found.id).order_by(h.id)
            )
            # Every archived message about a registration has a history row naming it (R11).
            causes = [row["cause_id"] for row in history if not row["cause_type"].startswith(TIMED)]
            # A retraction's body names what it took back (R17); no other body leaves the table.
            retraction = case((t.inbox.c.type == "message.retracted", t.inbox.c.body))
            archived = (
                select(*(t.inbox.c[name] for name in ARCHIVED), retraction.label("body"))
                .where(t.inbox.c.message_id.in_(causes))
                .order_by(t.inbox.c.handled_at, t.inbox.c.message_id)
            )
            return port.CaseFile(
                found,
                history,
                _rows(db, archived) if causes else [],
                _rows(
                    db,
                    select(*(t.dead_letters.c[name] for name in DEAD_LETTERED))
                    .where(
                        t.dead_letters.c.enterprise_number == key.enterprise_number,
                        or_(
                            t.dead_letters.c.service == key.service,
                            t.dead_letters.c.service.is_(None),
                        ),
                    )
                    .order_by(t.dead_letters.c.id),
                ),
                _pending(db, found.id),
                _date(
                    db.execute(
                        select(t.registrations.c.pruned_on).where(t.registrations.c.id == found.id)
                    ).scalar()
                ),
            )

    def sent_at(self, event_ids: Sequence[str]) -> dict[str, dt.datetime | None]:
        return self._outbox(event_ids, "sent_at")

    def bodies(self, event_ids: Sequence[str]) -> dict[str, str]:
        return self._outbox(event_ids, "body")

    def _outbox(self, event_ids: Sequence[str], column: str) -> dict[str, Any]:
        if not event_ids:
            return {}
        c = t.outbox.c
        query = select(c.event_id, c[column]).where(c.event_id.in_(list(event_ids)))
        with self.engine.connect() as db:
            return {row[0]: row[1] for row in db.execute(query)}

    def record_dead_letter(self, row: Mapping[str, Any]) -> None:
        with self.engine.begin() as db:
            db.execute(insert(t.dead_letters).values(**row))


def _rows(db: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in db.execute(query)]


def _pending(db: Connection, registration_id: int) -> list[Timer]:
    c = timers.c
    query = (
        select(c.due_on, c.kind, c.deadline, c.offset_days)
        .where(c.registration_id == registration_id, c.fired_at.is_(None))
        .order_by(c.due_on, c.id)
    )
    return [Timer(*row) for row in db.execute(query)]


def _date(value: object) -> dt.date | None:
    """SQLite gives a computed date (min over the timers) back as text."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
