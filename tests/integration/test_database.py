"""Migrations run on PostgreSQL and SQLite, and the tables they make are the ones the code uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from worker.adapters import database, tables

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "postgresql":
        url = request.getfixturevalue("database_url")
        fresh = database.engine_for(url)
        with fresh.begin() as db:  # the test database comes migrated; start it from nothing
            for table in reversed(tables.metadata.sorted_tables):
                db.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
            db.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        return fresh
    return database.engine_for(f"sqlite:///{tmp_path / 'kmo.sqlite3'}")


def test_migrate_reaches_head_and_is_idempotent(engine: Engine) -> None:
    assert not database.is_at_head(engine)
    revision = database.migrate(engine)
    assert revision == database.head_revision(engine)
    assert database.migrate(engine) == revision
    assert set(inspect(engine).get_table_names()) >= {t.name for t in tables.metadata.sorted_tables}


def test_the_migrations_match_the_table_definitions(engine: Engine) -> None:
    database.migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), tables.metadata)
    assert differences == []
