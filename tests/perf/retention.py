"""Retention at size (R20), for the benchmark: rows past their window made by PostgreSQL
(`generate_series`, seconds not minutes), then one pass timed, table by table.

Per `count`: that many ids of messages about no registration, published events and fired
timers whose deadline is long past, a tenth as many dead-letter records, and `count / 8`
registrations closed long ago with four history rows and four archived messages each.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import Connection, text

from worker import config
from worker.bootstrap import bootstrap
from worker.service import retention
from worker.service.clock import Clock

BODY = "'" + '{"specversion":"1.0","type":"x","data":{' + '"f":"' + "x" * 600 + '"}}' + "'"
ROWS = (
    # inbox: messages about no registration, handled 200 days ago
    """INSERT INTO inbox (message_id, type, handled_at, outcome, registration_id, business_date,
         routing_key, reason, body)
       SELECT 'u-' || n, 'declaration.received', now() - interval '200 days', 'ignored', NULL,
         date '2026-07-01', 'declaration.received', 'unknown_registration', {body}
       FROM generate_series(1, {count}) AS n""",
    # outbox: events published 60 days ago
    """INSERT INTO outbox (id, event_id, type, body, created_at, sent_at)
       SELECT n, 'e-' || n, 'decision.registered', {body}, now() - interval '60 days',
         now() - interval '60 days'
       FROM generate_series(1, {count}) AS n""",
    # ids 1 to count: the oldest events are the outbox's head, as they would be (ids grow with
    # time and retention walks the outbox from its head); later ones are numbered after them
    """SELECT setval(pg_get_serial_sequence('outbox', 'id'),
         GREATEST((SELECT max(id) FROM outbox), 1))""",
    # timers: fired, for deadlines two years past
    """INSERT INTO timers (registration_id, kind, deadline, offset_days, due_on, fired_at)
       SELECT 100000000 + n, 'notice.expiring', date '2025-01-01' + (n % 300), 30,
         date '2025-01-01' + (n % 300) - 30, now() - interval '700 days'
       FROM generate_series(1, {count}) AS n""",
    # dead letters: recorded two years ago
    """INSERT INTO dead_letters (message_id, type, reason, error, enterprise_number, service,
         dead_lettered_at)
       SELECT 'd-' || n, 'declaration.received', 'schema_violation', 'received_on: not a date',
         '1543301276', 'training', now() - interval '700 days'
       FROM generate_series(1, {count} / 10) AS n""",
    # registrations closed in 2015, with their lives
    """INSERT INTO registrations (id, enterprise_number, unit_kind, department_id, service,
         registration_number, state, version, document, updated_at, cycle, terminal_since)
       SELECT 200000000 + n, '9' || lpad(n::text, 9, '0'), 'registered_office', '', 'training',
         'DV.X' || lpad(n::text, 6, '0'), 'withdrawn', 3, CAST('{{}}' AS json), now(), 1,
         date '2015-03-01' + (n % 200)
       FROM generate_series(1, {count} / 8) AS n""",
    """INSERT INTO history (registration_id, recorded_at, business_date, from_state, to_state,
         rule, note, cause_id, cause_type, events)
       SELECT 200000000 + n, now(), date '2015-01-01', NULL, 'withdrawn', 'R14', '',
         'c-' || n || '-' || k, 'registration.withdrawn', CAST('[]' AS json)
       FROM generate_series(1, {count} / 8) AS n, generate_series(1, 4) AS k""",
    """INSERT INTO inbox (message_id, type, handled_at, outcome, registration_id, business_date,
         routing_key, body)
       SELECT 'c-' || n || '-' || k, 'registration.withdrawn', now() - interval '4000 days',
         'handled', 200000000 + n, date '2015-01-01', 'registration.withdrawn', {body}
       FROM generate_series(1, {count} / 8) AS n, generate_series(1, 4) AS k""",
)


def load(db: Connection, count: int) -> int:
    """The rows, committed and analysed; how many rows retention may delete."""
    for statement in ROWS:
        db.execute(text(statement.format(count=count, body=BODY)))
    db.commit()
    for table in ("inbox", "outbox", "timers", "dead_letters", "registrations", "history"):
        db.execute(text(f"ANALYZE {table}"))
    db.commit()
    return 3 * count + count // 10 + 8 * (count // 8)


def prune_rate(database_url: str, today: dt.date) -> dict[str, Any]:
    """One pass over what `load` made, timed; rows per second per table and in all."""
    settings = config.Settings(database_url=database_url, erasure_years=None, log_level="warning")
    app = bootstrap(settings, Clock(today), configure_logs=False)
    windows = retention.Windows.of(settings)
    seconds: dict[str, float] = {}
    rows: dict[str, int] = {}
    started = last = time.perf_counter()
    for batch in retention.batches(
        app.store, app.envelopes, app.context(), app.clock.now(), windows
    ):
        now = time.perf_counter()
        seconds[batch.table] = seconds.get(batch.table, 0.0) + now - last
        rows[batch.table] = rows.get(batch.table, 0) + batch.rows
        last = now
    total = time.perf_counter() - started
    app.store.dispose()
    return {
        "rows": sum(rows.values()),
        "seconds": round(total, 2),
        "rows_per_s": round(sum(rows.values()) / total),
        "per_table": {
            table: {"rows": rows[table], "rows_per_s": round(rows[table] / seconds[table])}
            for table in rows
            if seconds[table] > 0
        },
    }
