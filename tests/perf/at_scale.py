"""Data at scale (#20): one PostgreSQL database grown in steps, with what each step measures.

The rows are made by PostgreSQL itself (`generate_series`, tests/perf/cases.py): registrations in
a live population's states, half training and half advice, with their timers, two archived
messages and their history rows each; beside them the events of the last 30 days in the outbox
(what retention keeps) and the ids of 90 days of messages about no registration. The largest size
is 1,800,000: a service has 999,999 registration numbers (R21), and the worker's own requests in
the measures need some left.

At each size: the worker's msg/s (live, the realistic mix over new registrations, `kmo-worker
run` on this database), the empty sweep, `find` with each filter and `--limit 100`, `explain`.
At the largest size the worker runs `--repeat` times, each run beside one on an empty database
(the figure to compare with; medians); then a sweep of at least 100,000 due timers, and a
retention pass over rows past their windows added for it (tests/perf/retention.py).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.perf import benchmark as b
from tests.perf import cases, plots, scale
from tests.perf import retention as pruning
from worker import config
from worker.bootstrap import bootstrap, open_store, settle_heap
from worker.consumer import sweep as sweeping
from worker.domain.model import Context
from worker.service.clock import Clock

SIZES = (200_000, 600_000, 1_800_000)
LARGEST = 1_800_000  # numbers left for the worker's own requests (R21: 999,999 a service)
BASE = b.TODAY + dt.timedelta(days=100)  # nothing due on the worker's day: its sweep stays idle
QUIET = BASE - dt.timedelta(days=91)  # the day before the first notice: the empty sweep's day
DUE = 100_000  # timers in the big sweep, at least

# Beside each step's registrations: the published events of the last 30 days (one in twenty
# registrations had one), and 90 days of messages about no registration (one in fifty).
BODY = pruning.BODY
AROUND = (
    f"""INSERT INTO outbox (event_id, type, body, created_at, sent_at)
    SELECT 'scale-e-' || n, 'decision.registered', {BODY}, now() - (n % 30) * interval '1 day',
      now() - (n % 30) * interval '1 day'
    FROM generate_series(CAST(:first AS integer), CAST(:count AS integer)) AS n WHERE n % 20 = 0""",
    f"""INSERT INTO inbox (message_id, type, handled_at, outcome, registration_id,
      business_date, routing_key, reason, body)
    SELECT 'scale-u-' || n, 'declaration.received', now() - (n % 90) * interval '1 day', 'ignored',
      NULL, DATE '2027-01-01', 'declaration.received', 'unknown_registration', {BODY}
    FROM generate_series(CAST(:first AS integer), CAST(:count AS integer)) AS n WHERE n % 50 = 0""",
)


def grow(url: str, first: int, count: int) -> float:
    """Registrations `first` to `count` and the rows around them; seconds taken."""
    store = open_store(url)
    started = time.perf_counter()
    with store.engine.connect() as db:
        for statement in AROUND:
            db.execute(text(statement), {"first": first, "count": count})
        cases.generate(db, count, story=True, first=first, base=BASE)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(text("VACUUM ANALYZE"))  # as autovacuum leaves a table of years
    took = time.perf_counter() - started
    store.dispose()
    return took


def aside(url: str, index: int, messages: int) -> None:
    """The worker's own registrations of measure `index` get ids and numbers past any the next
    sizes generate (1,800,000 ids, 900,000 numbers a service at most)."""
    store = open_store(url)
    with store.engine.begin() as db:
        db.execute(
            text(cases.SEQUENCE_AT),
            {"table": "registrations", "n": 50_000_000 + index * 1_000_000},
        )
        last = LARGEST // 2 + index * (messages // 3 + 1)  # a third of the mix are requests
        db.execute(text(cases.COUNTERS), {"training": last, "advice": last})
    store.dispose()


def app_on(url: str, today: dt.date) -> Any:
    settings = config.Settings(database_url=url, today=today, log_level="warning")
    return bootstrap(settings, Clock(today), configure_logs=False)


def reads(url: str, size: int) -> dict[str, Any]:
    """The empty sweep, then `find` with each filter and `explain` (`cases.reads`)."""
    app = app_on(url, QUIET)
    store, workers = app.store, app.settings.sweep_workers
    quiet = Context(today=QUIET)

    def empty_sweep() -> None:
        assert sweeping.sweep(store, app.envelopes, quiet, app.clock, workers=workers) == 0

    figures = {"empty_sweep_ms": cases.timed(empty_sweep, rounds=30)}
    figures |= cases.reads(store, size, QUIET)
    store.dispose()
    return figures


def due_sweep(url: str) -> dict[str, Any]:
    """A sweep on the first day by which at least `DUE` timers are due (half of them, on a small
    table): timers fired per second."""
    store = open_store(url)
    with store.engine.connect() as db:
        pending = "FROM timers WHERE fired_at IS NULL"
        wanted = min(DUE, int(db.execute(text(f"SELECT count(*) {pending}")).scalar_one()) // 2)
        day = db.execute(
            text(f"SELECT due_on {pending} ORDER BY due_on, id OFFSET :n LIMIT 1"),
            {"n": wanted - 1},
        ).scalar_one()
        due = db.execute(text(f"SELECT count(*) {pending} AND due_on <= :day"), {"day": day})
        due_count = int(due.scalar_one())
    store.dispose()
    app = app_on(url, day)
    settle_heap()  # as `kmo-worker run`, whose periodic sweep this is, does before it works
    workers = app.settings.sweep_workers
    started = time.perf_counter()
    fired = sweeping.sweep(app.store, app.envelopes, Context(today=day), app.clock, workers=workers)
    seconds = time.perf_counter() - started
    app.store.dispose()
    # Fewer fire than were due where one registration's timer cancels another's (an expiry
    # takes its later notices with it).
    assert fired >= 0.5 * due_count, (fired, due_count)
    return {
        "day": day.isoformat(),
        "due": due_count,
        "fired": fired,
        "sweep_workers": workers,
        "seconds": round(seconds, 1),
        "timers_per_s": round(fired / seconds),
    }


def run(sizes: tuple[int, ...], messages: int, prunable: int, repeat: int) -> dict[str, Any]:
    """Grow one database through `sizes`, measuring at each; at the largest, the worker `repeat`
    times, each run beside one on an empty database (interleaved: this machine drifts)."""
    runs = len(sizes) + repeat - 1
    assert max(sizes) <= LARGEST and LARGEST // 2 + runs * (messages // 3 + 1) <= 999_999
    mix_at = iter(range(0, 100_000_000, 1_000_000))  # each worker run on new registrations
    db = b.fresh_database()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
    steps: list[dict[str, Any]] = []
    empty: list[float] = []
    on_largest: list[float] = []
    try:
        store = open_store(url)
        store.migrate()
        # The outbox is pruned from its head (ids grow with time): the events retention finds
        # past their window at the end, made last, get the lowest ids, as the oldest would have.
        with store.engine.begin() as connection:
            connection.execute(text(cases.SEQUENCE_AT), {"table": "outbox", "n": prunable + 1})
        store.dispose()
        first = 1
        for size in sizes:
            b.step(f"scale: growing to {size:,} registrations")
            made = grow(url, first, size)
            first = size + 1
            b.step(f"scale: measuring at {size:,}")
            step: dict[str, Any] = {"registrations": size, "generated_s": round(made, 1)}
            step |= reads(url, size)
            for _ in range(repeat if size == sizes[-1] else 1):
                aside(url, len(on_largest) + len(steps), messages)
                mix = b.worker_mix(messages, next(mix_at))
                rate = round(scale.worker_rate("live", mix, on=db), 1)
                if size == sizes[-1]:
                    on_largest.append(rate)
                    b.step("scale: the worker on an empty database, beside it")
                    mix = b.worker_mix(messages, next(mix_at))
                    empty.append(round(scale.worker_rate("live", mix), 1))
            step["worker_msg_per_s"] = statistics.median(on_largest) if on_largest else rate
            step["database"] = scale.sizes(db)
            steps.append(step)
        b.step(f"scale: a sweep of {DUE:,} due timers or more")
        swept = due_sweep(url)
        with open_store(url).engine.begin() as connection:  # relayed, as the worker would
            connection.execute(text("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL"))
        b.step(f"scale: retention over {prunable:,} rows a table past their windows")
        with open_store(url).engine.connect() as connection:
            loaded = pruning.load(connection, prunable)
        # A month after the sweep's day: every event published by then is past its 30 days (the
        # outbox is pruned from its head, which the worker's and the sweep's events are in).
        later = dt.date.fromisoformat(swept["day"]) + dt.timedelta(days=31)
        retained = pruning.prune_rate(url, later) | {"loaded": loaded, "today": later.isoformat()}
    finally:
        b.drop(db=db)
    return {
        "messages": messages,
        "empty_worker_msg_per_s": empty,
        "largest_worker_msg_per_s": on_largest,
        "steps": steps,
        "largest_to_empty_msg_per_s": round(
            statistics.median(on_largest) / statistics.median(empty), 3
        ),
        "due_sweep": swept,
        "retention": retained,
    }


def report(f: dict[str, Any]) -> str:
    rows = [
        "| registrations | worker msg/s | empty sweep ms | find, worst filter ms | explain ms |"
        " rows in all | MiB in all |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in f["steps"]:
        database = s["database"].values()
        rows.append(
            f"| {s['registrations']:,} | {s['worker_msg_per_s']:,.0f}"
            f" | {s['empty_sweep_ms']['median_ms']} | {s['find_worst_median_ms']}"
            f" | {s['explain_ms']['median_ms']} | {sum(d['rows'] for d in database):,}"
            f" | {sum(d['table'] + d['indexes'] for d in database) / 2**20:,.0f} |"
        )
    empty = ", ".join(f"{r:,.0f}" for r in f["empty_worker_msg_per_s"])
    largest = ", ".join(f"{r:,.0f}" for r in f["largest_worker_msg_per_s"])
    swept, kept = f["due_sweep"], f["retention"]
    rows += [
        "",
        f"worker at the largest size: {largest} msg/s, beside each on an empty database:"
        f" {empty}; median to median {f['largest_to_empty_msg_per_s']:.0%}",
        f"sweep of {swept['fired']:,} due timers: {swept['timers_per_s']:,} timers/s",
        f"retention: {kept['rows']:,} rows in {kept['seconds']} s ({kept['rows_per_s']:,} rows/s)",
    ]
    return "\n".join(rows)


def plot(f: dict[str, Any], path: Path) -> Path:
    """The growth curves, one panel per measure, as a PNG beside the JSON; the worker's panel
    has 90 % of its rate on an empty database as its target."""
    steps = f["steps"]
    empty = statistics.median(f["empty_worker_msg_per_s"])
    return plots.panels(
        path,
        "registrations, millions",
        [s["registrations"] / 1e6 for s in steps],
        [
            ("worker msg/s", [s["worker_msg_per_s"] for s in steps], 0.9 * empty),
            ("empty sweep, ms", [s["empty_sweep_ms"]["median_ms"] for s in steps], 5.0),
            ("find, worst filter, ms", [s["find_worst_median_ms"] for s in steps], 50.0),
            ("explain, ms", [s["explain_ms"]["median_ms"] for s in steps], 50.0),
        ],
    )
