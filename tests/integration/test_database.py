"""Migrations run on PostgreSQL and SQLite, and the tables they make are the ones the code uses."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, insert, inspect, select, table

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
        {
            "id": number,
            "enterprise_number": f"{number:010d}",
            "unit_kind": "registered_office",
            "department_id": "",
            "service": "training",
            "registration_number": f"DV.O{number:06d}",
            "state": state,
            "version": 1,
            "document": json.dumps({"state": state, "state_since": since}),
            "updated_at": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        }
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
