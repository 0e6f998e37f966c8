"""Archived lives the size of years, for the benchmark of replay (R17) and `replay --what-if`.

Four lives are made by the worker itself (its unit of work, its sweep) on PostgreSQL: registered
at once; failed, reacted and registered on a re-audit; conditional, approved, reminded and
registered on the follow-up; registered, reminded twice and expired. PostgreSQL then copies them
(`generate_series`) to `count` registrations with their own valid enterprise numbers, registration
numbers and message ids, bodies and documents rewritten to match, so that every copy replays to
exactly what is stored (the benchmark checks that all are "the same").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from typing import Any

from sqlalchemy import text

from tests.perf.cases import timed
from tests.support import Life
from worker import config
from worker import samples as s
from worker.bootstrap import App, bootstrap
from worker.domain import replay
from worker.entrypoints import replay as replaying
from worker.service import intake, lives, unit_of_work, what_if
from worker.service.clock import Clock

D = dt.date
NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
# The template lives' enterprise numbers (valid), one per shape; their registrations get ids and
# numbers 1..4 (DV.O000001..4), as the worker draws them on an empty database.
TEMPLATES = ("1543301276", "0417497106", "0326541491", "0995127057")
SHAPES = len(TEMPLATES)
TRAINING_UP_TO = 600_000  # then advice, DV.A: a registration number has six digits


def _enterprise(n: str) -> str:
    """A valid enterprise number for copy n: eight digits and 97 - their remainder mod 97."""
    base = f"(1000000 + {n})"
    return f"(lpad({base}::text, 8, '0') || lpad((97 - {base} % 97)::text, 2, '0'))"


def _copied(column: str) -> str:
    """`column` of template t rewritten for copy n (enterprise number, number, ids, service)."""
    replaced = f"replace({column}, tpl.enterprise, {_enterprise('g.n')})"
    replaced = f"replace({replaced}, tpl.number, g.number)"
    replaced = f"replace({replaced}, 'TPL' || tpl.id || '-', 'L' || g.n || '-')"
    for spaced in ('"service": "training"', '"service":"training"'):
        advice = spaced.replace("training", "advice")
        replaced = f"CASE WHEN g.n > {TRAINING_UP_TO} THEN replace({replaced}, '{spaced}', '{advice}') ELSE {replaced} END"
    return replaced


COPIES = """WITH g AS (
  SELECT n, 1 + (n - 1) % {shapes} AS template,
    CASE WHEN n <= {training} THEN 'DV.O' || lpad(n::text, 6, '0')
         ELSE 'DV.A' || lpad((n - {training})::text, 6, '0') END AS number
  FROM generate_series({first}, :count) AS n),
tpl AS (
  SELECT id, enterprise_number AS enterprise, registration_number AS number
  FROM registrations WHERE id <= {shapes})"""


def statements() -> list[str]:
    head = COPIES.format(shapes=SHAPES, training=TRAINING_UP_TO, first=SHAPES + 1)
    service = f"CASE WHEN g.n > {TRAINING_UP_TO} THEN 'advice' ELSE 'training' END"
    return [
        head
        + f"""
INSERT INTO registrations (id, enterprise_number, unit_kind, department_id, service,
  registration_number, state, version, document, updated_at, bureau, cycle, period_end,
  follow_up_deadline, reaction_deadline)
SELECT g.n, {_enterprise("g.n")}, r.unit_kind, r.department_id, {service}, g.number,
  r.state, r.version, CAST({_copied("CAST(r.document AS text)")} AS json), r.updated_at,
  r.bureau, r.cycle, r.period_end, r.follow_up_deadline, r.reaction_deadline
FROM g JOIN tpl ON tpl.id = g.template JOIN registrations AS r ON r.id = tpl.id""",
        head
        + f"""
INSERT INTO inbox (message_id, type, handled_at, outcome, registration_id, business_date,
  routing_key, publisher, reason, body)
SELECT {_copied("i.message_id")}, i.type, i.handled_at, i.outcome, g.n, i.business_date,
  i.routing_key, i.publisher, i.reason, {_copied("i.body")}
FROM g JOIN tpl ON tpl.id = g.template JOIN inbox AS i ON i.registration_id = tpl.id""",
        head
        + f"""
INSERT INTO history (registration_id, recorded_at, business_date, from_state, to_state, rule,
  note, cause_id, cause_type, events, bureau, publisher, actor, reason, reference)
SELECT g.n, h.recorded_at, h.business_date, h.from_state, h.to_state, h.rule, h.note,
  {_copied("h.cause_id")}, h.cause_type, h.events, h.bureau, h.publisher, h.actor, h.reason,
  h.reference
FROM g JOIN tpl ON tpl.id = g.template JOIN history AS h ON h.registration_id = tpl.id
ORDER BY g.n, h.id""",
        head
        + """
INSERT INTO timers (registration_id, kind, deadline, offset_days, due_on, fired_at)
SELECT g.n, x.kind, x.deadline, x.offset_days, x.due_on, x.fired_at
FROM g JOIN tpl ON tpl.id = g.template JOIN timers AS x ON x.registration_id = tpl.id""",
        "SELECT setval(pg_get_serial_sequence('registrations', 'id'), :count)",
    ]


def app_on(url: str) -> App:
    settings = config.Settings(
        database_url=url, audit_bureaus=frozenset({s.APPOINTED_BUREAU}), log_level="warning"
    )
    return bootstrap(settings, Clock(D(2026, 3, 2)), configure_logs=False)


def _send(app: App, day: dt.date, shape: int, *documents: dict[str, Any]) -> None:
    ctx = dataclasses.replace(app.context(), today=day)
    accepted = []
    for k, document in enumerate(documents):
        document = {**document, "id": f"TPL{shape}-{day}-{k}"}
        checked = intake.check(json.dumps(document).encode(), {}, app.validators, app.settings)
        assert isinstance(checked, intake.Accepted), checked
        accepted.append(checked)
    unit_of_work.handle_messages(app.store, app.envelopes, accepted, ctx, NOW)


def _sweep(app: App, day: dt.date) -> None:
    ctx = dataclasses.replace(app.context(), today=day)
    with app.store.transaction() as tx:
        unit_of_work.fire_timers(tx, app.envelopes, tx.claim_due(day, 1000), ctx, NOW)


def templates(app: App) -> None:
    """The four lives, in order, so that shape t is registration t."""
    keys = [s.key(number) for number in TEMPLATES]
    start = D(2026, 3, 2)
    for shape, key in enumerate(keys, 1):
        _send(app, start, shape, s.request(key), s.declaration(key, start))
    one, two, three, four = keys
    _send(app, D(2026, 3, 10), 1, s.audit(one, D(2026, 3, 9)))
    _send(app, D(2026, 3, 10), 2, s.audit(two, D(2026, 3, 9), result="failed", report_id="F"))
    _send(app, D(2026, 4, 1), 2, s.reaction(two, "F", D(2026, 4, 1)))
    _send(app, D(2026, 5, 1), 2, s.audit(two, D(2026, 4, 30), report_id="G"))
    conditional = s.audit(
        three, D(2026, 3, 9), result="conditional", follow_up_deadline=D(2026, 12, 1)
    )
    _send(app, D(2026, 3, 10), 3, conditional)
    _send(app, D(2026, 3, 20), 3, s.approval(three, D(2026, 3, 20)))
    _send(app, D(2026, 3, 10), 4, s.audit(four, D(2026, 3, 9)))
    _sweep(app, D(2026, 11, 1))  # the follow-up reminder of three
    _send(app, D(2026, 11, 15), 3, s.audit(three, D(2026, 11, 14), kind="follow_up"))
    _sweep(app, D(2031, 3, 15))  # four and one: reminded twice and expired


def generate(app: App, count: int) -> None:
    templates(app)
    with app.store.engine.connect() as db:
        for statement in statements():
            db.execute(text(statement), {"count": count})
        db.commit()
    # As autovacuum leaves years of archive: visibility known, statistics current (a first
    # reader of freshly copied rows would otherwise write every page it reads, once).
    with app.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(text("VACUUM ANALYZE"))


def twenty_messages() -> list[replay.Step]:
    """A life of 20 messages: failed, reacted, conditional, approved, and ignored messages."""
    key = s.key(TEMPLATES[0])
    life = Life()
    life.send(s.request(key), D(2026, 3, 2))
    life.send(s.declaration(key, D(2026, 3, 2)), D(2026, 3, 2))
    life.send(s.audit(key, D(2026, 3, 9), result="failed", report_id="F"), D(2026, 3, 10))
    life.send(s.reaction(key, "F", D(2026, 4, 1)), D(2026, 4, 1))
    deadline = D(2026, 12, 1)
    conditional = s.audit(key, D(2026, 5, 1), result="conditional", follow_up_deadline=deadline)
    life.send(conditional, D(2026, 5, 2))
    for k in range(14):
        life.send(s.approval(key, D(2026, 5, 3 + k)), D(2026, 5, 3 + k))  # the first counts
    life.send(s.audit(key, D(2026, 11, 1), kind="follow_up"), D(2026, 11, 2))
    assert len(life.steps) == 20 and life.state == "registered"
    return life.steps


def run(url: str, count: int) -> dict[str, Any]:
    """Generate `count` lives, then replay one of 20 messages, and all of them `--what-if`."""
    app = app_on(url)
    app.store.migrate()
    started = time.perf_counter()
    generate(app, count)
    made = time.perf_counter() - started

    steps = twenty_messages()
    ctx = dataclasses.replace(app.context(), today=D(2027, 1, 1))
    one = timed(lambda: replay.replay(steps, ctx, "DV.O000001"), rounds=51)
    # Registration 2 (five messages), read from the database, parsed and replayed.
    read_one = timed(
        lambda: replay.replay(lives.steps(app.store.lives(1, 1)[0].lived), ctx, "DV.O000002"),
        rounds=51,
    )

    # As `kmo-worker replay --what-if` runs (cores + 1 processes), and in one process alone.
    at = dataclasses.replace(app, clock=Clock(D(2027, 1, 1)))
    jobs = replaying.JOBS
    parallel, took = _what_if(at, jobs)
    alone, took_alone = _what_if(at, 1, limit=min(count, 100_000))
    app.store.dispose()
    return {
        "registrations": count,
        "generated_s": round(made, 1),
        "replay_20_messages_ms": one,
        "read_and_replay_5_messages_ms": read_one,
        "what_if_jobs": jobs,
        "what_if_s": round(took, 1),
        "what_if_per_s": round(parallel.registrations / took),
        "what_if_totals": vars(parallel),
        "what_if_one_process_per_s": round(alone.registrations / took_alone),
    }


def _what_if(app: App, jobs: int, limit: int | None = None) -> tuple[what_if.Totals, float]:
    totals = what_if.Totals()
    started = time.perf_counter()
    for part, _differing in replaying.judged(app, jobs=jobs):
        totals += part
        if limit is not None and totals.registrations >= limit:
            break
    return totals, time.perf_counter() - started
