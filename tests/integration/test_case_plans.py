"""Every filter of `kmo-worker find` is an index range on a table of 1,000,000 registrations
(made by PostgreSQL's `generate_series`, tests/perf/cases.py): the plans themselves, not timings
(the benchmark times them)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection

from tests.conftest import PG_BASE, _admin
from tests.perf import cases as data
from worker.adapters.store import cases, port
from worker.bootstrap import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COUNT = 1_000_000
W = port.Window
D = dt.date
SINGLE_FILTERS = data.SINGLE_FILTERS
NUMBER = "uq_registrations_registration_number"  # the page's order; a common value walks it
MEANT = {
    "state": {"ix_registrations_state_number"},
    "state, a common one": {"ix_registrations_state_number", NUMBER},
    "service": {NUMBER},
    "unit kind, department": {"ix_registrations_department_number"},
    "unit kind, registered office": {NUMBER},
    "audit bureau": {"ix_registrations_bureau_number"},
    "second cycle": {"ix_registrations_cycle_number"},
    "first cycle": {NUMBER},
    "end date before": {"ix_registrations_period_end_number"},
    "end date after": {"ix_registrations_period_end_number"},
    "follow-up by": {"ix_registrations_follow_up_deadline_number"},
    "follow-up window": {"ix_registrations_follow_up_deadline_number"},
    "reaction by": {"ix_registrations_reaction_deadline_number"},
    "next timer due before": {"ix_timers_due"},
    "next timer due after": {"ix_timers_due"},
    "the second page": {"ix_registrations_state_number", NUMBER},
    "a dated second page": {"ix_registrations_period_end_number"},
}


@pytest.fixture(scope="module")
def million(pg_template: str) -> Iterator[Connection]:
    name = f"kmo_plans_{pg_template[-8:]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    store = open_store(f"{PG_BASE}/{name}")
    with store.engine.connect() as db:
        data.generate(db, COUNT)
        yield db
    store.dispose()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _plan(db: Connection, query: port.CaseQuery) -> dict[str, Any]:
    statement = cases.search_statement(query).compile(
        dialect=db.dialect, compile_kwargs={"literal_binds": True}
    )
    (row,) = db.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}").one()
    document = row if isinstance(row, list) else json.loads(row)
    return dict(document[0]["Plan"])


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("name", list(SINGLE_FILTERS))
def test_each_filter_of_find_is_read_by_index(million: Connection, name: str) -> None:
    plan = _plan(million, SINGLE_FILTERS[name])
    nodes = list(_nodes(plan))
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes]
    assert not [s for s in scans if s[0] == "Seq Scan"], f"{name}: {scans}"
    # No sort of the whole filtered set: the index gives the page's order.
    assert not [n for n in nodes if n["Node Type"] == "Sort"], f"{name}: {scans}"
    # The scan that reads the page (the first one, outermost) uses the index meant for it.
    first = next(s for s in scans if s[2])
    assert first[2] in MEANT[name], f"{name}: {scans}"


def test_the_pages_hold_what_the_filters_say(million: Connection) -> None:
    store_rows = million.execute(
        cases.search_statement(
            port.CaseQuery(
                states=("registered_conditionally",),
                windows={"follow_up_deadline": W(before=D(2027, 1, 31))},
                limit=50,
            )
        )
    ).all()
    assert len(store_rows) == 51  # a page and one more: another page follows
    documents = [json.loads(row.document) for row in store_rows]
    assert {d["state"] for d in documents} == {"registered_conditionally"}
    deadlines = [d["follow_up_deadline"] for d in documents]
    assert deadlines == sorted(deadlines) and max(deadlines) <= "2027-01-31"
