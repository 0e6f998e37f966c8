"""The PostgreSQL store: a batch is one statement each way; row locks with SKIP LOCKED let
replicas and parallel sweeps share the work without waiting for each other."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, create_engine, select, text

from worker.adapters.store import documents, erasure, port, sql
from worker.adapters.store import postgres_sql as q
from worker.adapters.store import tables as t
from worker.adapters.store.rows import DOCUMENT, stored
from worker.contracts.envelope import Outgoing
from worker.domain.model import Registration
from worker.domain.schedule import Timer

_json = sql.json_parameter


class PostgresStore(sql.SqlStore):
    concurrent = True

    @classmethod
    def open(cls, url: str) -> PostgresStore:
        return cls(create_engine(url, pool_pre_ping=False, pool_size=5, max_overflow=5))

    def _begin(self, db: Connection) -> PostgresTransaction:
        return PostgresTransaction(db)

    def _relax(self, db: Connection) -> None:
        db.exec_driver_sql("SET LOCAL synchronous_commit = off")


class PostgresTransaction(sql.SqlTransaction):
    def __init__(self, db: Connection) -> None:
        super().__init__(db)
        self._sent: list[str] = []  # marks that go with the next write, or alone at commit
        self._sent_at: dt.datetime | None = None

    def read_for_messages(
        self,
        message_ids: Sequence[str],
        keys: set[port.KeyTuple],
        may_register: Mapping[str, set[port.KeyTuple]],
    ) -> port.Read:
        counts = {service: len(wanted) for service, wanted in may_register.items() if wanted}
        parameters = {
            "ids": _json(list(set(message_ids))),
            "keys": _json([dict(zip(q.KEY_COLUMNS, key, strict=True)) for key in sorted(keys)]),
            "numbers": _json([{"service": s, "n": n} for s, n in sorted(counts.items())]),
            "new_ids": sum(counts.values()),
        }
        read = port.Read()
        for row in _execute(self.db, q.READ, parameters):
            if row.part == "seen":
                read.seen.add(row.document)
            elif row.part == "registration":
                key = (row.enterprise_number, row.unit_kind, row.department_id, row.service)
                read.stored[key] = stored(row)
            elif row.part == "number":
                count = counts[row.service]
                read.numbers[row.service] = port.numbers_up_to(row.service, row.id, count)
            else:
                read.ids.append(row.id)
        return read

    def claim_due(self, today: dt.date, limit: int, exclude: Sequence[int] = ()) -> port.Claimed:
        """A timer is claimed with its registration: registrations SKIP LOCKED (a timer whose
        registration another transaction holds is left for a later sweep, so nobody waits), then
        the claimed timers, still pending. Whoever changes a registration's timers holds the
        registration, so the second lock never waits. Not both in one `FOR UPDATE OF timers,
        registrations SKIP LOCKED`: that keeps the lock on a timer whose registration it then
        skips, and two sweeps cancelling each other's registrations' timers deadlocked (#20)."""
        c, r = t.timers.c, t.registrations.c
        columns = (c.id, c.registration_id, c.due_on, c.kind, c.deadline, c.offset_days)
        query = (
            select(*columns, c.traceparent, r.version, DOCUMENT)
            .join(t.registrations, r.id == c.registration_id)
            .where(c.fired_at.is_(None), c.due_on <= today)
            .order_by(c.due_on, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=[t.registrations])
        )
        if exclude:
            query = query.where(c.id.not_in(list(exclude)))
        dues, stored = [], {}
        # Rows unpacked as tuples: a sweep claims a million of them.
        rows: Any = self.db.execute(query)
        for (
            timer_id,
            registration_id,
            due_on,
            kind,
            deadline,
            offset,
            cause,
            version,
            document,
        ) in rows:
            timer = Timer(due_on, kind, deadline, offset)
            dues.append(port.DueTimer(timer_id, registration_id, timer, cause))
            if registration_id not in stored:
                registration = documents.load(document)
                stored[registration_id] = port.Stored(registration_id, version, registration)
        full = len(dues) == limit
        if dues:
            # Read anew: one fired by a sweep that let go of its registration after this
            # statement's snapshot was taken is not fired twice.
            pending = _execute(self.db, q.LOCK_PENDING, {"ids": [d.id for d in dues]})
            still = set(pending.scalars())
            if len(still) < len(dues):
                dues = [d for d in dues if d.id in still]
                kept = {d.registration_id for d in dues}
                stored = {i: s for i, s in stored.items() if i in kept}
        return port.Claimed(dues, stored, full)

    def mark_sent(self, event_ids: Sequence[str], now: dt.datetime) -> None:
        self._sent += event_ids  # with the next write, or alone before the commit
        self._sent_at = self._sent_at or now

    def before_commit(self) -> None:
        if self._sent:
            now, sent = self._sent_at, self._take_sent()
            _execute(self.db, q.MARK_SENT, {"now": now, "sent": sent})

    def _take_sent(self) -> str:
        sent, self._sent, self._sent_at = self._sent, [], None
        return _json(sent)

    def left_over(self, created_before: dt.datetime, limit: int) -> list[Outgoing]:
        query = self._left_over_query(created_before, limit).with_for_update(skip_locked=True)
        return [Outgoing(*row) for row in self.db.execute(query)]

    def write(self, writes: port.Writes, now: dt.datetime) -> None:
        parts = _parts(writes)
        if self._sent:
            parts["sent"] = self._take_sent()
        if parts:
            params = q.NOTHING_TO_WRITE | parts | {"now": now}
            written = _execute(self.db, q.WRITE, params).scalar_one()
            if written != len(writes.changed):
                numbers = ", ".join(r.number for _, _, r in writes.changed)
                raise port.StaleRegistrationError(numbers)
        erasure.erase(self.db, writes.erase)  # rare: its own statements, after the rows it reads


def _parts(w: port.Writes) -> dict[str, Any]:
    """The write's parameters for the parts this batch has (`q.NOTHING_TO_WRITE` the others)."""
    params: dict[str, Any] = {}
    if w.inserted:
        params["inserted"] = _inserted_json(w.inserted)
    if w.returned:
        params["returned"] = _json([{"service": s, "n": n} for s, n in w.returned.items()])
    if w.changed:
        params["changed"] = _changed_json(w.changed)
        params["changed_ids"] = [i for i, _, _ in w.changed]
    if w.fired:
        params["fired"] = w.fired
    if w.cancel:
        params["cancel"] = _json([_timer_row(i, x) for i, x in w.cancel])
        params["cancel_ids"] = sorted({i for i, _ in w.cancel})
    if w.add:
        params["add"] = _json(
            [_timer_row(i, x) | {"due_on": x.due, "traceparent": w.traced.get(i)} for i, x in w.add]
        )
    if w.history:
        params["history"] = _json(w.history)
    if w.outbox:
        params["outbox"] = _json(
            [{"event_id": e.id, "type": e.type, "body": e.body} for e in w.outbox]
        )
    if w.inbox:
        params["inbox"] = _json(w.inbox)
    return params


_DIALECT = create_engine("postgresql+psycopg://").dialect  # no connection: only its SQL rules


@functools.lru_cache(maxsize=256)
def _driver_sql(statement: str) -> str:
    """A statement's `:name` parameters as psycopg's `%(name)s`, compiled by SQLAlchemy once per
    statement (its `text()` rules: `::` casts are not parameters, `%` is escaped)."""
    return str(text(statement).compile(dialect=_DIALECT))


def _execute(db: Connection, statement: str, params: dict[str, Any]) -> Any:
    """A batch's statement as the driver's SQL (`exec_driver_sql`): SQLAlchemy's errors,
    transaction and result as with `execute(text(...))`, without parsing the statement's text
    and looking up its compiled form on every batch: a third of the worker's instructions for a
    one-message batch (docs/performance.md)."""
    return db.exec_driver_sql(_driver_sql(statement), params)


def _changed_json(changed: Sequence[tuple[int, int, Registration]]) -> str:
    rows = (
        _with_document(_json({"id": i, "version": v, "state": r.state.value, **port.columns(r)}), r)
        for i, v, r in changed
    )
    return "[" + ",".join(rows) + "]"


def _inserted_json(inserted: Sequence[tuple[int, Registration]]) -> str:
    rows = []
    for registration_id, r in inserted:
        key = port.key_tuple(r.key)
        columns = {"id": registration_id, **dict(zip(q.KEY_COLUMNS, key, strict=True))}
        columns |= {"registration_number": r.number, "state": r.state.value, **port.columns(r)}
        rows.append(_with_document(_json(columns), r))
    return "[" + ",".join(rows) + "]"


def _with_document(columns: str, registration: Registration) -> str:
    """A JSON object's text with the registration's document spliced in (JSON already)."""
    return f'{columns[:-1]},"document":{documents.dump(registration)}}}'


def _timer_row(registration_id: int, timer: Timer) -> dict[str, Any]:
    return {
        "registration_id": registration_id,
        "kind": timer.kind,
        "deadline": timer.deadline,
        "offset_days": timer.offset_days,
    }
