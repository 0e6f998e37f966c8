"""The batch statements as the driver gets them (`postgres._driver_sql`): SQLAlchemy's `text()`
rules, applied once per statement instead of on every batch (#20)."""

from __future__ import annotations

import importlib
import re

from worker.adapters.store import postgres
from worker.adapters.store import postgres_sql as q

PARAMETER = re.compile(r"%\((\w+)\)s")


def test_named_parameters_become_the_drivers_and_casts_and_percent_signs_stay_sql() -> None:
    converted = postgres._driver_sql(
        "SELECT NULL::bigint, CAST(:ids AS json), x FROM t WHERE y LIKE 'a%' AND z = :now"
    )
    assert converted == (
        "SELECT NULL::bigint, CAST(%(ids)s AS json), x FROM t WHERE y LIKE 'a%%' AND z = %(now)s"
    )


def test_every_batch_statement_keeps_exactly_its_parameters() -> None:
    """A parameter lost or made up in the conversion would fail only on PostgreSQL, at run time."""
    for statement in (q.READ, q.MARK_SENT, q.LOCK_PENDING, q.WRITE):
        named = set(re.findall(r"(?<![:\w]):(\w+)", statement))
        assert named, statement
        assert set(PARAMETER.findall(postgres._driver_sql(statement))) == named
        assert ":" + next(iter(named)) not in postgres._driver_sql(statement)


def test_the_write_calls_the_function_of_migration_0009_with_its_arguments_in_order() -> None:
    """The function's signature is frozen in its migration; the call is the store's. A renamed,
    reordered or retyped argument would reach the wrong column, or fail only on PostgreSQL."""
    migration = importlib.import_module("worker.migrations.versions.0009_write_batch")
    declared = re.findall(r"p_(\w+) ([\w\[\]]+)", migration.ARGUMENTS)
    assert declared == list(q.WRITE_PARAMETERS)
    assert re.findall(r"CAST\(:(\w+) AS ([\w\[\]]+)\)", q.WRITE) == declared
    assert set(q.NOTHING_TO_WRITE) == {name for name, _ in declared} - {"now"}


def test_a_statement_is_converted_once() -> None:
    statement = "SELECT :only_once"
    first = postgres._driver_sql(statement)
    assert postgres._driver_sql(statement) is first
