"""Migrations run on PostgreSQL and SQLite, and the tables they make are the ones the code uses."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, delete, func, insert, inspect, select, table, update

from worker.adapters.store import port, tables
from worker.bootstrap import open_store

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> port.Store:
    if request.param == "postgresql":
        fresh = open_store(request.getfixturevalue("database_url"))
        with fresh.engine.begin() as db:  # the test database comes migrated; start it from nothing
            for table in reversed(tables.metadata.sorted_tables):
                db.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
            db.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        return fresh
    return open_store(f"sqlite:///{tmp_path / 'kmo.sqlite3'}")


def test_migrate_reaches_head_and_is_idempotent(store: port.Store) -> None:
    assert not store.is_at_head()
    revision = store.migrate()
    assert revision is not None and store.is_at_head()
    assert store.migrate() == revision
    names = set(inspect(store.engine).get_table_names())
    assert names >= {t.name for t in tables.metadata.sorted_tables}


def test_the_migrations_match_the_table_definitions(store: port.Store) -> None:
    store.migrate()
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), tables.metadata)
    assert differences == []


def test_the_retention_migration_dates_the_registrations_already_closed(store: port.Store) -> None:
    """0006 fills `terminal_since` from the documents of closed registrations, and only theirs."""
    config = store._alembic()  # type: ignore[attr-defined]
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    names = ("id", "enterprise_number", "unit_kind", "department_id", "service")
    names += ("registration_number", "state", "version", "document", "updated_at")
    before_0006 = table("registrations", *(column(name) for name in names))
    rows = [
        _row(number, state, json.dumps({"state": state, "state_since": since}))
        for number, state, since in (
            (1, "withdrawn", "2027-03-04"),
            (2, "registered", "2027-01-02"),
        )
    ]
    with store.engine.begin() as connection:
        connection.execute(insert(before_0006), rows)
    store.migrate()
    r = tables.registrations.c
    with store.engine.connect() as connection:
        found = {row[0]: row[1] for row in connection.execute(select(r.id, r.terminal_since))}
    assert found == {1: dt.date(2027, 3, 4), 2: None}


def test_the_counts_by_state_follow_every_write_whoever_makes_it(store: port.Store) -> None:
    """0008 starts the counts from the registrations already stored; from then on the database
    keeps them through inserts, state changes (one or many in a statement), other updates and
    deletes, and reading folds them into one row a state without changing a sum."""
    config = store._alembic()  # type: ignore[attr-defined]
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    states = ["registered", "registered", "withdrawn", "conditionally_registered", "requested"]
    with store.engine.begin() as connection:
        connection.execute(
            insert(tables.registrations), [_row(n, s) for n, s in enumerate(states, start=1)]
        )
    store.migrate()
    assert (
        store.count_by_state()
        == _grouped(store)
        == {
            "registered": 2,
            "withdrawn": 1,
            "conditionally_registered": 1,
            "requested": 1,
        }
    )
    r = tables.registrations.c
    with store.engine.begin() as connection:
        connection.execute(insert(tables.registrations), [_row(11, "requested")])
        connection.execute(
            update(tables.registrations).where(r.state == "requested"), {"state": "registered"}
        )
        connection.execute(update(tables.registrations).where(r.id == 1), {"version": 2})
        connection.execute(delete(tables.registrations).where(r.id == 3))  # withdrawn
    with store.engine.begin() as connection:  # undone: counts nothing
        connection.execute(update(tables.registrations).values(state="expired"))
        connection.rollback()
    expected = {"registered": 4, "conditionally_registered": 1}
    assert _grouped(store) == expected
    assert store.count_by_state() == expected
    assert store.count_by_state() == expected  # folded already: the same
    with store.engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(tables.state_counts)).scalar_one()
            == 2
        )


def _row(number: int, state: str, document: object = None) -> dict[str, object]:
    return {
        "id": number,
        "enterprise_number": f"{number:010d}",
        "unit_kind": "registered_office",
        "department_id": "",
        "service": "training",
        "registration_number": f"DV.O{number:06d}",
        "state": state,
        "version": 1,
        "document": document or {"state": state},
        "updated_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    }


def _grouped(store: port.Store) -> dict[str, int]:
    r = tables.registrations.c
    with store.engine.connect() as connection:
        return dict(connection.execute(select(r.state, func.count()).group_by(r.state)).all())


def test_folds_at_once_keep_the_sums(database_url: str) -> None:
    """Replicas read the gauges at once while registrations are written: every fold deletes
    rows another may be deleting, and no count is lost or counted twice."""
    store = open_store(database_url)
    store.migrate()
    before = store.count_by_state()
    stop = threading.Event()
    errors: list[BaseException] = []

    def fold() -> None:
        while not stop.is_set():
            try:
                store.count_by_state()
            except BaseException as error:  # reported on the test's thread
                errors.append(error)
                return

    folders = [threading.Thread(target=fold) for _ in range(3)]
    for thread in folders:
        thread.start()
    try:
        for n in range(60):
            with store.engine.begin() as connection:
                connection.execute(insert(tables.registrations), [_row(900_000 + n, "requested")])
        stop.set()
        for thread in folders:
            thread.join()
        assert errors == []
        counts = store.count_by_state()
        assert counts == _grouped(store)
        assert counts.get("requested", 0) == before.get("requested", 0) + 60
    finally:
        stop.set()
        with store.engine.begin() as connection:
            connection.execute(
                delete(tables.registrations).where(tables.registrations.c.id >= 900_000)
            )
    store.dispose()
