"""A table of registrations the size of years, made by PostgreSQL itself (`generate_series`),
for the plan test of `find` and the benchmark of `find` and `explain`.

Registration n: training DV.O<(n + 1) / 2> when n is odd, advice DV.A<n / 2> when it is even
(so that a table grown in steps, `first` to `count`, numbers as one made at once); one in 50 is
a department; states spread as a live population would be (70 % registered, 10 % conditional, 5 %
awaiting a reaction, ...); twenty audit bureaus; one in a hundred in its second cycle; period ends
spread over five years from `base`; each has the timers its state would have with the default settings, and
the database says its timers follow them.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from worker.adapters.store import port
from worker.domain import schedule
from worker.domain.model import NoticeOffsets

BUREAUS = 20
BASE = dt.date(2027, 1, 1)  # the first period end; notices fall due from 30 days before
TERMINAL = "('expired', 'stopped', 'refused', 'withdrawn')"

STATE = """CASE
  WHEN n % 100 < 70 THEN 'registered'
  WHEN n % 100 < 80 THEN 'registered_conditionally'
  WHEN n % 100 < 85 THEN 'audit_failed'
  WHEN n % 100 < 90 THEN 'requested'
  WHEN n % 100 < 93 THEN 'admitted_temporarily'
  WHEN n % 100 < 95 THEN 'awaiting_approval'
  WHEN n % 100 < 97 THEN 'expired'
  WHEN n % 100 < 98 THEN 'stopped'
  WHEN n % 100 < 99 THEN 'refused'
  ELSE 'withdrawn' END"""

ROWS = f"""
WITH base AS (
  SELECT n, {STATE} AS state,
    CASE WHEN n % 2 = 1 THEN 'training' ELSE 'advice' END AS service,
    CASE WHEN n % 2 = 1 THEN 'DV.O' || lpad(((n + 1) / 2)::text, 6, '0')
         ELSE 'DV.A' || lpad((n / 2)::text, 6, '0') END AS number,
    CASE WHEN n % 50 = 0 THEN 'department' ELSE 'registered_office' END AS unit_kind,
    '04031707' || lpad((n % {BUREAUS})::text, 2, '0') AS bureau,
    CASE WHEN n % 100 = 7 THEN 2 ELSE 1 END AS cycle,
    CAST(:base AS date) + (n % 1826) AS period_end,
    CAST(:base AS date) + (n % 365) AS deadline
  FROM generate_series(CAST(:first AS integer), CAST(:count AS integer)) AS n),
shaped AS (
  SELECT b.*,
    CASE WHEN state IN ('registered', 'registered_conditionally', 'admitted_temporarily',
      'expired', 'stopped', 'withdrawn') THEN period_end END AS end_column,
    CASE WHEN state IN ('registered_conditionally', 'awaiting_approval') THEN deadline END
      AS follow_up,
    CASE WHEN state = 'audit_failed' THEN deadline END AS reaction
  FROM base AS b)
INSERT INTO registrations (id, enterprise_number, unit_kind, department_id, service,
  registration_number, state, version, document, updated_at, bureau, cycle, period_end,
  follow_up_deadline, reaction_deadline, terminal_since)
SELECT n, lpad(n::text, 10, '0'), unit_kind,
  CASE WHEN unit_kind = 'department' THEN 'D' || n ELSE '' END, service, number, state, 1,
  json_strip_nulls(json_build_object(
    'key', json_build_object('enterprise_number', lpad(n::text, 10, '0'),
      'unit', CASE WHEN unit_kind = 'department'
        THEN json_build_object('kind', 'department', 'department_id', 'D' || n)
        ELSE json_build_object('kind', 'registered_office') END,
      'service', service),
    'number', number, 'state', state, 'state_since', '2026-06-01', 'cycle', cycle,
    'bureau', bureau,
    'period', CASE WHEN end_column IS NOT NULL THEN json_build_object(
      'start', (end_column - 1826)::text, 'end', end_column::text) END,
    'follow_up_deadline', follow_up::text, 'reaction_deadline', reaction::text)),
  now(), bureau, cycle, end_column, follow_up, reaction,
  CASE WHEN state IN {TERMINAL} THEN DATE '2026-06-01' END
FROM shaped"""

# The timers `schedule.timers_for` gives each state with the default notice offsets (R5-R9);
# every notice's day is after the state began (2026-06-01), so none is left out.
TIMERS = """
WITH r AS (SELECT * FROM registrations WHERE id BETWEEN :first AND :count),
wanted (state, kind, offset_days, deadline_column) AS (VALUES
  ('registered', 'deadline.period_end', 0, 'period_end'),
  ('registered', 'notice.expiring', 90, 'period_end'),
  ('registered', 'notice.expiring', 30, 'period_end'),
  ('registered_conditionally', 'deadline.period_end', 0, 'period_end'),
  ('registered_conditionally', 'notice.expiring', 90, 'period_end'),
  ('registered_conditionally', 'notice.expiring', 30, 'period_end'),
  ('registered_conditionally', 'deadline.follow_up', 0, 'follow_up_deadline'),
  ('registered_conditionally', 'notice.follow_up_due', 30, 'follow_up_deadline'),
  ('admitted_temporarily', 'deadline.period_end', 0, 'period_end'),
  ('admitted_temporarily', 'notice.starter_modules_due', 90, 'period_end'),
  ('audit_failed', 'deadline.reaction', 0, 'reaction_deadline'),
  ('audit_failed', 'notice.reaction_due', 30, 'reaction_deadline')),
dated AS (
  SELECT r.id, w.kind, w.offset_days, CASE w.deadline_column
      WHEN 'period_end' THEN r.period_end WHEN 'follow_up_deadline' THEN r.follow_up_deadline
      ELSE r.reaction_deadline END AS deadline
  FROM r JOIN wanted AS w ON w.state = r.state)
INSERT INTO timers (registration_id, kind, deadline, offset_days, due_on)
SELECT id, kind, deadline, offset_days,
  CASE WHEN offset_days = 0 THEN deadline + 1 ELSE deadline - offset_days END
FROM dated WHERE deadline IS NOT NULL
ORDER BY id"""

# The pending timers follow the default settings (R18): a worker started on them has nothing
# to reschedule.
FOLLOWED = """
UPDATE worker_state SET applied = :fingerprint, applying = NULL, after_id = 0
WHERE name = 'timer_settings'"""


# For `explain`: each registration's request and audit in the archive and in its history.
STORY = """
WITH archived AS (
  INSERT INTO inbox (message_id, type, handled_at, outcome, registration_id, business_date,
    routing_key, publisher, body)
  SELECT 'm-' || r.id || '-' || k, t, now(), 'handled', r.id, DATE '2026-06-01', t, 'desk',
    '{"specversion": "1.0", "id": "m-' || r.id || '-' || k || '", "type": "' || t || '"}'
  FROM registrations AS r,
    (VALUES (1, 'registration.requested'), (2, 'audit.reported')) AS m(k, t)
  WHERE r.id BETWEEN :first AND :count
  RETURNING message_id, registration_id, type)
INSERT INTO history (registration_id, recorded_at, business_date, from_state, to_state, rule,
  note, cause_id, cause_type, events, publisher)
SELECT registration_id, now(), DATE '2026-06-01', NULL, 'requested', 'eligibility', '',
  message_id, type, '["decision.request_accepted"]', 'desk'
FROM archived"""

# The indexes of the generated tables that no constraint owns, with the statement that makes
# each again: an index built once over a million rows costs a fraction of a million insertions.
SECONDARY = """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid IN ('registrations'::regclass, 'timers'::regclass, 'inbox'::regclass,
  'history'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"""

# A table's id sequence set: the next row inserted without an id gets `n` + 1.
SEQUENCE_AT = "SELECT setval(pg_get_serial_sequence(:table, 'id'), :n)"

# The numbers drawn, as the worker would have drawn them: its next request is numbered after.
COUNTERS = """
INSERT INTO number_counters (service, last_value) VALUES ('training', :training), ('advice', :advice)
ON CONFLICT (service) DO UPDATE SET last_value = EXCLUDED.last_value"""


def generate(
    db: Connection, count: int, story: bool = False, first: int = 1, base: dt.date = BASE
) -> None:
    """Registrations `first` to `count` and their timers in a migrated database (empty, or
    holding 1 to `first` - 1 made the same way); analyzed. With `story`, two archived messages
    and their history rows for each."""
    span = {"first": first, "count": count}
    # Into empty tables, the rows go in before their secondary indexes, built once after.
    indexes = db.execute(text(SECONDARY)).all() if first == 1 else []
    for name, _definition in indexes:
        db.execute(text(f'DROP INDEX "{name}"'))
    db.execute(text(ROWS), span | {"base": base})
    db.execute(text(TIMERS), span)
    if story:
        db.execute(text(STORY), span)
    for _name, definition in indexes:
        db.execute(text(definition))
    db.execute(text(SEQUENCE_AT), {"table": "registrations", "n": count})
    db.execute(text(COUNTERS), {"training": (count + 1) // 2, "advice": count // 2})
    db.execute(text(FOLLOWED), {"fingerprint": schedule.fingerprint(NoticeOffsets())})
    db.commit()
    db.execute(text("ANALYZE"))
    db.commit()


D = dt.date
W = port.Window
# One query per filter of `find`: the plan test checks that each is an index range, the
# benchmark times each (with `--limit 100`).
SINGLE_FILTERS = {
    "state": port.CaseQuery(states=("awaiting_approval",)),
    "state, a common one": port.CaseQuery(states=("registered",)),
    "service": port.CaseQuery(service="advice"),
    "unit kind, department": port.CaseQuery(unit_kind="department"),
    "unit kind, registered office": port.CaseQuery(unit_kind="registered_office"),
    "audit bureau": port.CaseQuery(bureau="0403170707"),
    "second cycle": port.CaseQuery(cycle=2),
    "first cycle": port.CaseQuery(cycle=1),
    "end date before": port.CaseQuery(windows={"period_end": W(before=D(2027, 3, 1))}),
    "end date after": port.CaseQuery(windows={"period_end": W(after=D(2031, 1, 1))}),
    "follow-up by": port.CaseQuery(windows={"follow_up_deadline": W(before=D(2027, 2, 28))}),
    "follow-up window": port.CaseQuery(
        windows={"follow_up_deadline": W(D(2027, 5, 1), D(2027, 5, 31))}
    ),
    "reaction by": port.CaseQuery(windows={"reaction_deadline": W(before=D(2027, 3, 31))}),
    "next timer due before": port.CaseQuery(windows={"next_due": W(before=D(2027, 2, 1))}),
    "next timer due after": port.CaseQuery(windows={"next_due": W(after=D(2029, 6, 1))}),
    "the second page": port.CaseQuery(states=("registered",), after="DV.O300000"),
    "a dated second page": port.CaseQuery(
        windows={"period_end": W(after=D(2028, 1, 1))}, after="2028-06-01|DV.O100000"
    ),
}


def run(url: str, count: int) -> dict[str, Any]:
    """`find` for each single filter and `explain`, on `count` registrations (`reads`)."""
    from worker.bootstrap import open_store

    store = open_store(url)
    store.migrate()
    with store.engine.connect() as db:
        started = time.perf_counter()
        generate(db, count, story=True)
        made = time.perf_counter() - started
    figures = {"registrations": count, "generated_s": round(made, 1)}
    figures |= reads(store, count, dt.date(2027, 2, 1))
    store.dispose()
    return figures


def reads(store: Any, count: int, today: dt.date) -> dict[str, Any]:
    """`find` for each single filter (100 rows, the documents read) and `explain` of
    registrations spread over the table, through the store as the commands use it."""
    from worker.entrypoints import explain as explaining
    from worker.service import cases

    found = {
        name: timed(lambda q=query: store.search(q))  # type: ignore[misc]
        for name, query in SINGLE_FILTERS.items()
    }
    numbers = iter(f"DV.O{n:06d}" for n in range(1_000, count // 2, max(count // 100, 1)))

    def explain_one() -> None:
        stored = store.by_number(next(numbers))
        assert stored is not None
        explaining.render(cases.explain(store, stored, today))

    return {
        "find_ms": found,
        "find_worst_median_ms": max(f["median_ms"] for f in found.values()),
        "explain_ms": timed(explain_one, rounds=21),
    }


def timed(action: Callable[[], Any], rounds: int = 7) -> dict[str, float]:
    """Median and worst of `rounds` runs after one to warm the caches, in ms."""
    action()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}
