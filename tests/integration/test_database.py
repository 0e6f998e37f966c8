"""Migrations run on PostgreSQL and SQLite, and the tables they make are the ones the code uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

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
