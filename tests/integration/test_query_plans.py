"""The batch statements find their rows by index in whatever plan PostgreSQL uses for them.

A plan the server caches for a prepared statement (psycopg prepares one on its fifth use) is kept
for as long as the connection lives or the tables are not analyzed again; one made while the
tables were empty scanned inbox and registrations whole for every batch, a cost that grew with
every message handled. These tests look at the plans themselves, not at timings.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from sqlalchemy import Connection, text

from tests.conftest import TODAY
from worker import config
from worker import samples as s
from worker.adapters.store import port, postgres_sql
from worker.bootstrap import App, bootstrap
from worker.service import intake, unit_of_work

pytestmark = pytest.mark.integration

CLOUDEVENTS = {"content_type": "application/cloudevents+json"}


def _generic_plan(db: Connection, statement: str, params: dict[str, Any]) -> str:
    """The plan the server would cache for `statement`, with `params` filled in at execution."""
    names: list[str] = []

    def numbered(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    sql = re.sub(r"(?<![:\w]):(\w+)", numbered, statement)
    db.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
    db.exec_driver_sql(f"PREPARE probe AS {sql}")
    driver = db.connection.driver_connection
    assert driver is not None
    quote = driver.execute
    args = ", ".join(
        quote("SELECT quote_literal(%s)", [str(params[n])]).fetchone()[0] for n in names
    )
    lines = [row[0] for row in db.exec_driver_sql(f"EXPLAIN EXECUTE probe({args})")]
    db.exec_driver_sql("DEALLOCATE probe")
    return "\n".join(lines)


def test_the_batch_read_uses_the_indexes_in_a_plan_made_while_the_tables_were_empty(
    settings: config.Settings,
) -> None:
    app = bootstrap(settings, configure_logs=False)
    key = {"enterprise_number": "0123456749", "unit_kind": "x", "department_id": "", "service": "T"}
    with app.store.engine.begin() as db:
        plan = _generic_plan(
            db,
            postgres_sql.READ,
            {
                "ids": json.dumps(["a", "b"]),
                "keys": json.dumps([key]),
                "numbers": "[]",
                "new_ids": 0,
            },
        )
    assert "Seq Scan on inbox" not in plan, plan
    assert "Seq Scan on registrations" not in plan, plan
    assert re.search(r"Index (Only )?Scan using pk_inbox", plan), plan
    assert re.search(r"Index Scan using uq_registrations\w* on registrations", plan), plan


def _events(db: Connection, first: int, last: int) -> None:
    """Pending events e<first> to e<last> in the outbox."""
    db.execute(
        text(
            "INSERT INTO outbox (event_id, type, body, created_at) SELECT 'e' || n,"
            " 'decision.registered', '{}', now() FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) n"
        ),
        {"first": first, "last": last},
    )


SENT = {"now": "2027-01-01T00:00:00Z", "sent": json.dumps(["e1", "e2"])}


def test_marking_events_sent_uses_the_index_on_a_large_outbox(settings: config.Settings) -> None:
    app = bootstrap(settings, configure_logs=False)
    with app.store.engine.begin() as db:
        _events(db, 1, 20_000)
        db.exec_driver_sql("ANALYZE outbox")
        plan = _generic_plan(db, postgres_sql.MARK_SENT, SENT)
    assert "Seq Scan on outbox" not in plan, plan


def test_marking_events_sent_looks_them_up_by_id_not_among_the_pending(
    settings: config.Settings,
) -> None:
    # Statistics taken when little was pending, then a burst: the planner takes the index of
    # pending events for a small one, and walked all of it for every batch (0.7 ms a batch at a
    # backlog of 20,000 entries, measured, growing with it).
    app = bootstrap(settings, configure_logs=False)
    with app.store.engine.begin() as db:
        _events(db, 1, 20_000)
        db.exec_driver_sql("UPDATE outbox SET sent_at = now()")
        db.exec_driver_sql("ANALYZE outbox")  # nothing pending, by the statistics
        _events(db, 20_001, 40_000)  # a burst, not yet analyzed
        plan = _generic_plan(db, postgres_sql.MARK_SENT, SENT)
        custom = "\n".join(
            row[0]
            for row in db.execute(
                text(f"EXPLAIN {postgres_sql.MARK_SENT}"), {**SENT, "now": dt.datetime.now(dt.UTC)}
            )
        )
    for made in (plan, custom):
        assert "ix_outbox_pending" not in made, made
        assert "uq_outbox_event_id" in made, made


WRITTEN = ("registrations", "timers", "outbox", "inbox", "history")


def _sequential_scans(app: App) -> dict[str, int]:
    """The server's count of sequential scans per table, the pooled connection's included: its
    backend flushes its counts when it next goes idle (`pg_stat_force_next_flush`)."""
    with app.store.engine.connect() as db:  # the pooled connection the batches used
        db.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        db.commit()
    with app.store.engine.connect() as db:
        rows = db.execute(
            text("SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname = ANY(:names)"),
            {"names": list(WRITTEN)},
        )
        return {name: int(count) for name, count in rows}


def test_the_batch_write_reaches_its_rows_by_index_in_the_plan_it_caches_on_empty_tables(
    settings: config.Settings,
) -> None:
    """The write is the function `write_batch` (migration 0009), whose plan the server caches
    from its sixth call. Made here while the tables are empty, where a sequential scan looks
    cheapest: the UPDATE and DELETE parts (registrations changed, timers cancelled, events
    marked sent) must still find their rows by index, or every batch would scan whole tables
    once they are large."""
    app = bootstrap(settings, configure_logs=False)
    now = dt.datetime.combine(TODAY, dt.time(9), dt.UTC)
    before = _sequential_scans(app)
    published: list[str] = []

    def mark_published(tx: port.Transaction) -> None:  # as the engine's marks ride along
        if published:
            tx.mark_sent(published, now)
            published.clear()

    for n in range(8):
        key = s.key(f"{10_000_000 + n:08d}{97 - (10_000_000 + n) % 97:02d}")
        day = TODAY - dt.timedelta(days=3)
        for document in (s.request(key), s.declaration(key, day), s.audit(key, day)):
            message = intake.check(
                json.dumps(document).encode(), CLOUDEVENTS, app.validators, settings
            )
            assert isinstance(message, intake.Accepted), message
            committed = unit_of_work.handle_messages(
                app.store, app.envelopes, [message], app.context(), now, mark_published
            )
            published += [event.id for event in committed.events]
    after = _sequential_scans(app)
    assert after == before, {name: after[name] - before[name] for name in WRITTEN}
    with app.store.engine.connect() as db:  # and the parts did their work
        assert db.exec_driver_sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL").scalar()
        assert db.exec_driver_sql("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL").scalar()
        assert db.exec_driver_sql("SELECT count(*) FROM registrations WHERE version > 2").scalar()


def test_the_claimed_timers_are_locked_by_their_ids_in_a_cached_plan(
    settings: config.Settings,
) -> None:
    """The sweep's second claim statement (`LOCK_PENDING`, #20) runs once a batch: prepared,
    its generic plan must look the timers up by primary key, not walk the table."""
    app = bootstrap(settings, configure_logs=False)
    with app.store.engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO timers (registration_id, kind, deadline, offset_days, due_on)"
                " SELECT n, 'deadline.period_end', DATE '2030-01-01', 0, DATE '2030-01-02'"
                " FROM generate_series(1, 20000) AS n"
            )
        )
        db.exec_driver_sql("ANALYZE timers")
        plan = _generic_plan(db, postgres_sql.LOCK_PENDING, {"ids": "{1,2,3}"})
    assert "Seq Scan on timers" not in plan, plan
    assert re.search(r"Index Scan using pk_timers", plan), plan
