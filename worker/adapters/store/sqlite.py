"""The SQLite store, the embedded default: one writer at a time, a statement per table.

SQLite has no row locks: the database is locked from a transaction's first write to its commit,
and a registration's version guards against a change since it was read. A batch that may create
registrations draws its numbers first (an UPDATE, which takes the write lock), so the ids it
then draws from the table's highest cannot be taken by anybody else before it commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from worker.adapters.store import documents, erasure, port, sql
from worker.adapters.store import tables as t
from worker.adapters.store.rows import DOCUMENT, stored
from worker.contracts.envelope import Outgoing
from worker.domain.model import Registration
from worker.domain.schedule import Timer


class SqliteStore(sql.SqlStore):
    sets_itself_up = True

    @classmethod
    def open(cls, url: str) -> SqliteStore:
        memory = url in ("sqlite://", "sqlite:///:memory:")
        # In memory: one connection for all, or every connection would see a database of its own.
        options: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
        engine = create_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _pragmas)
        return cls(engine)

    def _begin(self, db: Connection) -> SqliteTransaction:
        return SqliteTransaction(db)


def _pragmas(dbapi_connection: DBAPIConnection, _entry: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets `kmo-worker show` read while the worker writes; NORMAL is durable in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class SqliteTransaction(sql.SqlTransaction):
    def read_for_messages(
        self,
        message_ids: Sequence[str],
        keys: set[port.KeyTuple],
        may_register: Mapping[str, set[port.KeyTuple]],
    ) -> port.Read:
        read = port.Read(seen=self._seen(message_ids), stored=self._load(keys))
        for service, wanted in sorted(may_register.items()):
            new = len(wanted - read.stored.keys())
            if new:
                read.numbers[service] = self._allocate_numbers(service, new)
        wanted_ids = sum(len(numbers) for numbers in read.numbers.values())
        if wanted_ids:
            highest = self.db.execute(select(func.max(t.registrations.c.id))).scalar() or 0
            read.ids = list(range(highest + wanted_ids, highest, -1))  # popped from the end
        return read

    def _seen(self, message_ids: Sequence[str]) -> set[str]:
        wanted = list(set(message_ids))
        if not wanted:
            return set()
        query = select(t.inbox.c.message_id).where(t.inbox.c.message_id.in_(wanted))
        return set(self.db.execute(query).scalars())

    def _load(self, keys: set[port.KeyTuple]) -> dict[port.KeyTuple, port.Stored]:
        if not keys:
            return {}
        c = t.registrations.c
        columns = (c.enterprise_number, c.unit_kind, c.department_id, c.service)
        query = (
            select(c.id, c.version, DOCUMENT, *columns)
            .where(tuple_(*columns).in_(list(keys)))
            .order_by(c.id)
        )
        return {
            (r.enterprise_number, r.unit_kind, r.department_id, r.service): stored(r)
            for r in self.db.execute(query)
        }

    def _allocate_numbers(self, service: str, count: int) -> list[str | None]:
        counter = t.number_counters
        last = self.db.execute(
            update(counter)
            .where(counter.c.service == service)
            .values(last_value=counter.c.last_value + count)
            .returning(counter.c.last_value)
        ).scalar()
        if last is None:
            self.db.execute(insert(counter).values(service=service, last_value=count))
            last = count
        return port.numbers_up_to(service, last, count)

    def claim_due(self, today: dt.date, limit: int, exclude: Sequence[int] = ()) -> port.Claimed:
        c = t.timers.c
        query = (
            select(c.id, c.registration_id, c.due_on, c.kind, c.deadline, c.offset_days)
            .add_columns(c.traceparent)
            .where(c.fired_at.is_(None), c.due_on <= today)
            .order_by(c.due_on, c.id)
            .limit(limit)
        )
        if exclude:
            query = query.where(c.id.not_in(list(exclude)))
        dues = [
            port.DueTimer(i, registration_id, Timer(due_on, kind, deadline, offset), cause)
            for i, registration_id, due_on, kind, deadline, offset, cause in self.db.execute(
                query
            ).all()
        ]
        r = t.registrations.c
        ids = sorted({due.registration_id for due in dues})
        rows = self.db.execute(select(r.id, r.version, DOCUMENT).where(r.id.in_(ids)))
        return port.Claimed(dues, {row.id: stored(row) for row in rows}, len(dues) == limit)

    def mark_sent(self, event_ids: Sequence[str], now: dt.datetime) -> None:
        if event_ids:
            self.db.execute(
                update(t.outbox)
                .where(t.outbox.c.event_id.in_(list(event_ids)), t.outbox.c.sent_at.is_(None))
                .values(sent_at=now)
            )

    def left_over(self, created_before: dt.datetime, limit: int) -> list[Outgoing]:
        query = self._left_over_query(created_before, limit)
        return [Outgoing(*row) for row in self.db.execute(query)]

    def write(self, writes: port.Writes, now: dt.datetime) -> None:
        self._insert(writes.inserted, now)
        self._update(writes.changed, now)
        if writes.fired:
            fired = t.timers.c.id.in_(writes.fired)
            self.db.execute(update(t.timers).where(fired).values(fired_at=now))
        self._change_timers(writes.cancel, writes.add, writes.traced)
        if writes.history:
            self.db.execute(insert(t.history), writes.history)
        self._enqueue(writes.outbox, now)
        if writes.inbox:
            self.db.execute(insert(t.inbox), writes.inbox)
        counter = t.number_counters
        for service, count in writes.returned.items():
            self.db.execute(
                update(counter)
                .where(counter.c.service == service)
                .values(last_value=counter.c.last_value - count)
            )
        erasure.erase(self.db, writes.erase)

    def _insert(self, inserted: Sequence[tuple[int, Registration]], now: dt.datetime) -> None:
        if not inserted:
            return
        columns = ("enterprise_number", "unit_kind", "department_id", "service")
        rows = [
            {
                "id": registration_id,
                **dict(zip(columns, port.key_tuple(r.key), strict=True)),
                "registration_number": r.number,
                "state": r.state.value,
                "version": 1,
                "document": documents.as_dict(r),
                "updated_at": now,
                **port.columns(r),
            }
            for registration_id, r in inserted
        ]
        self.db.execute(insert(t.registrations), rows)

    def _update(self, changes: Sequence[tuple[int, int, Registration]], now: dt.datetime) -> None:
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
                **{name: bindparam(f"b_{name}") for name in port.CASE_COLUMNS},
            )
        )
        rows = [
            {
                "b_id": registration_id,
                "b_version": version,
                "b_next": version + 1,
                "b_state": r.state.value,
                "b_document": documents.as_dict(r),
                "b_now": now,
                **{f"b_{name}": value for name, value in port.columns(r).items()},
            }
            for registration_id, version, r in changes
        ]
        if self.db.execute(statement, rows).rowcount != len(changes):
            raise port.StaleRegistrationError(", ".join(r.number for _, _, r in changes))

    def _change_timers(
        self,
        cancel: Sequence[tuple[int, Timer]],
        add: Sequence[tuple[int, Timer]],
        traced: Mapping[int, str],
    ) -> None:
        """Only unfired timers are cancelled (fired ones stay as a record); one that exists
        already, fired or not, is not added again."""
        c = t.timers.c
        if cancel:
            statement = delete(t.timers).where(
                c.registration_id == bindparam("b_id"),
                c.kind == bindparam("b_kind"),
                c.deadline == bindparam("b_deadline"),
                c.offset_days == bindparam("b_offset"),
                c.fired_at.is_(None),
            )
            rows = [
                {"b_id": i, "b_kind": x.kind, "b_deadline": x.deadline, "b_offset": x.offset_days}
                for i, x in cancel
            ]
            self.db.execute(statement, rows)
        if add:
            adding = sqlite_insert(t.timers).on_conflict_do_nothing(
                index_elements=["registration_id", "kind", "deadline", "offset_days"]
            )
            added: list[dict[str, object]] = [
                {
                    "registration_id": i,
                    "kind": x.kind,
                    "deadline": x.deadline,
                    "offset_days": x.offset_days,
                    "due_on": x.due,
                    "traceparent": traced.get(i),
                }
                for i, x in add
            ]
            self.db.execute(adding, added)
