"""What both stores share: transactions, migrations, and the queries that are the same SQL on
either database (SQLAlchemy Core). The hot path is each store's own."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from worker.adapters.store import lives, port, retention
from worker.adapters.store import tables as t
from worker.adapters.store.cases import CaseQueries
from worker.adapters.store.rows import DOCUMENT, stored
from worker.contracts.envelope import Outgoing
from worker.domain.model import TERMINAL
from worker.domain.schedule import Timer

SCRIPT_LOCATION = "worker:migrations"
TIMER_SETTINGS = "timer_settings"  # the row of `worker_state` R18 keeps


def json_parameter(value: object) -> str:
    """A statement's JSON parameter: compact UTF-8, dates and times as ISO 8601 (orjson)."""
    return orjson.dumps(value).decode()


class SqlTransaction:
    """The parts of a transaction that are the same SQL on both databases."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self._undo: list[Callable[[], None]] = []

    def savepoint(self) -> AbstractContextManager[object]:
        return self.db.begin_nested()

    def life(self, registration_id: int) -> list[port.Lived]:
        return lives.read(self.db, registration_id)

    def archived_for(self, message_id: str) -> int | None:
        return lives.registration_of(self.db, message_id)

    def claim_to_erase(self, closed_before: dt.date, limit: int) -> list[port.Stored]:
        return retention.claim_to_erase(self.db, closed_before, limit)

    # -- R18: the pending timers follow the settings ------------------------------------------

    def timer_settings(self) -> port.Applying | None:
        c = t.worker_state.c
        query = (
            select(c.applied, c.applying, c.after_id)
            .where(c.name == TIMER_SETTINGS)
            .with_for_update(skip_locked=True)  # one replica at a time moves it on
        )
        row = self.db.execute(query).first()
        return port.Applying(row.applied, row.applying, int(row.after_id)) if row else None

    def save_timer_settings(self, applying: port.Applying, now: dt.datetime) -> None:
        c = t.worker_state.c
        self.db.execute(
            update(t.worker_state)
            .where(c.name == TIMER_SETTINGS)
            .values(
                applied=applying.applied,
                applying=applying.applying,
                after_id=applying.after_id,
                updated_at=now,
            )
        )

    def live_after(self, after_id: int, limit: int) -> list[port.Stored]:
        r = t.registrations.c
        query = (
            select(r.id, r.version, DOCUMENT)
            .where(r.id > after_id, r.state.not_in([s.value for s in TERMINAL]))
            .order_by(r.id)
            .limit(limit)
            .with_for_update()
        )
        return [stored(row) for row in self.db.execute(query)]

    def timers_of(self, registration_ids: Sequence[int]) -> dict[int, dict[Timer, bool]]:
        return lives.timers_of(self.db, registration_ids)

    def on_rollback(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def before_commit(self) -> None:
        """What the transaction kept back to write together (nothing, here)."""

    def rolled_back(self) -> None:
        undo, self._undo = self._undo, []
        for action in undo:
            action()

    def _left_over_query(self, created_before: dt.datetime, limit: int) -> Any:
        c = t.outbox.c
        return (
            select(c.event_id, c.type, c.body)
            .where(c.sent_at.is_(None), c.created_at < created_before)
            .order_by(c.id)
            .limit(limit)
        )

    def _enqueue(self, events: list[Outgoing], now: dt.datetime) -> None:
        rows = [
            {"event_id": event.id, "type": event.type, "body": event.body, "created_at": now}
            for event in events
        ]
        if rows:
            self.db.execute(insert(t.outbox), rows)


class SqlStore(CaseQueries, lives.LifeQueries, retention.RetentionQueries):
    """A store on a SQLAlchemy engine; subclasses name their transaction class."""

    concurrent = False
    sets_itself_up = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _begin(self, db: Connection) -> SqlTransaction:
        raise NotImplementedError

    def _relax(self, db: Connection) -> None:
        """Let this transaction's commit return before it is on disk (where the database can)."""

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[Any]:
        with self.engine.connect() as db:
            tx = self._begin(db)
            try:
                with db.begin():
                    if not durable:
                        self._relax(db)
                    yield tx
                    tx.before_commit()
            except BaseException:
                tx.rolled_back()
                raise

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Any]:
        return self._transaction(durable)

    # -- queries for people and metrics -------------------------------------------------------

    def find(self, enterprise_number: str) -> list[port.Stored]:
        c = t.registrations.c
        query = (
            select(c.id, c.version, DOCUMENT)
            .where(c.enterprise_number == enterprise_number)
            .order_by(c.registration_number)
        )
        with self.engine.connect() as db:
            return [stored(row) for row in db.execute(query)]

    def history_of(self, registration_id: int) -> list[dict[str, object]]:
        query = select(t.history).where(t.history.c.registration_id == registration_id)
        with self.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(query.order_by(t.history.c.id))]

    def count_by_state(self) -> dict[str, int]:
        """From `state_counts`, which the database keeps (migration 0008): its rows are folded
        into one a state first. Folds at once on PostgreSQL keep the sums: a row is deleted by
        one of them only, the others wait for it, skip the row and fold the rest."""
        c = t.state_counts.c
        with self.engine.begin() as db:
            folded: Counter[str] = Counter()
            for state, delta in db.execute(delete(t.state_counts).returning(c.state, c.delta)):
                folded[state] += int(delta)
            kept = [{"state": s, "delta": n} for s, n in folded.items() if n]
            if kept:
                db.execute(insert(t.state_counts), kept)
            counts = db.execute(select(c.state, func.sum(c.delta)).group_by(c.state))
            return {state: int(n) for state, n in counts if n}

    def numbers_used(self) -> dict[str, int]:
        counter = t.number_counters.c
        with self.engine.connect() as db:
            rows = db.execute(select(counter.service, counter.last_value))
            return {service: int(last) for service, last in rows}

    def stats(self, today: dt.date) -> port.Stats:
        """Cheap: both counts walk partial indexes of pending rows only."""
        pending = t.outbox.c.sent_at.is_(None)
        outbox = select(func.count(), func.min(t.outbox.c.created_at)).where(pending)
        due = t.timers.c.fired_at.is_(None) & (t.timers.c.due_on <= today)
        timers = select(func.count(), func.count().filter(t.timers.c.due_on < today)).where(due)
        with self.engine.connect() as db:
            backlog, oldest = db.execute(outbox).one()
            due_count, overdue = db.execute(timers).one()
        if isinstance(oldest, dt.datetime) and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)  # SQLite keeps no zone
        return port.Stats(int(backlog), oldest, int(due_count), int(overdue))

    def outbox_backlog(self) -> int:
        query = select(func.count()).select_from(t.outbox).where(t.outbox.c.sent_at.is_(None))
        with self.engine.connect() as db:
            return int(db.execute(query).scalar_one())

    def answers(self) -> bool:
        try:
            with self.engine.connect() as db:
                db.exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            return False
        return True

    # -- migrations ---------------------------------------------------------------------------

    def _alembic(self) -> Config:
        config = Config()
        config.set_main_option("script_location", SCRIPT_LOCATION)
        url = self.engine.url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return config

    def migrate(self) -> str | None:
        config = self._alembic()
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return self.revision()

    def revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def is_at_head(self) -> bool:
        return self.revision() == ScriptDirectory.from_config(self._alembic()).get_current_head()

    def dispose(self) -> None:
        self.engine.dispose()
