"""The batch statements as the driver gets them (`postgres._driver_sql`): SQLAlchemy's `text()`
rules, applied once per statement instead of on every batch (#20)."""

from __future__ import annotations

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
    write = q.write_statement(
        [
            q.INSERTED,
            q.RETURNED,
            q.CHANGED,
            q.FIRED,
            q.CANCEL,
            q.ADD,
            q.HISTORY,
            q.OUTBOX,
            q.INBOX,
            q.SENT,
        ],
        counts_changed=True,
    )
    for statement in (q.READ, q.MARK_SENT, q.LOCK_PENDING, write):
        named = set(re.findall(r"(?<![:\w]):(\w+)", statement))
        assert named, statement
        assert set(PARAMETER.findall(postgres._driver_sql(statement))) == named
        assert ":" + next(iter(named)) not in postgres._driver_sql(statement)


def test_a_statement_is_converted_once() -> None:
    statement = "SELECT :only_once"
    first = postgres._driver_sql(statement)
    assert postgres._driver_sql(statement) is first
