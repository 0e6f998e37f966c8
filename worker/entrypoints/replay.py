"""`kmo-worker replay --what-if`: which registrations the code and settings as they are now would
decide differently from what was decided (R17, R18). Read only; exit 1 when any would differ, so
a deployment pipeline can stop on it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from worker.adapters.store import port
from worker.bootstrap import App, open_store, settle_heap
from worker.config import Settings
from worker.domain.model import Context
from worker.entrypoints import progress
from worker.service import what_if

# Registration ids per task of a parallel run: big enough that a task's three queries and its
# start are a small share, small enough that the progress moves and memory stays flat.
WINDOW = 5_000
# One process per core and one more: each waits on the database part of the time (measured: 3
# processes judged 6,021 registrations/s on 2 cores where 2 judged 5,567; docs/performance.md).
JOBS = (os.cpu_count() or 1) + 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--what-if",
        action="store_true",
        required=True,
        help="compare with what was decided; nothing is written",
    )
    parser.add_argument("registration", nargs="?", help="one registration number (DV.A000123)")
    parser.add_argument("--state", action="append", default=[], help="only these states")
    parser.add_argument("--json", action="store_true", help="NDJSON: each difference, then totals")
    parser.add_argument("--show", type=int, default=50, help="differences printed (text; 50)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=JOBS,
        help=f"processes that replay in parallel (default: cores + 1, here {JOBS})",
    )


def run(app: App, args: argparse.Namespace) -> int:
    number = args.registration.upper() if args.registration else None
    states = list(args.state)
    counts = app.store.count_by_state()
    total = 1 if number else sum(n for s, n in counts.items() if not states or s in states)
    totals, shown = what_if.Totals(), 0
    # A process pool pays for its start-up: worth it from a few windows on.
    jobs = args.jobs if not number and total > 2 * WINDOW else 1
    with progress.bar(total, "registrations", quiet=args.json) as bar:
        for part, differing in judged(app, states=states, number=number, jobs=jobs):
            totals += part
            for verdict in differing:
                if args.json or shown < args.show:
                    shown += 1
                    bar.write(
                        json.dumps(dataclasses.asdict(verdict)) if args.json else _text(verdict)
                    )
            bar.update(part.registrations)
    if args.json:
        print(json.dumps({"totals": vars(totals)}))
    else:
        print(_summary(totals, shown))
    return 1 if totals.registrations != totals.same else 0


Judged = tuple[what_if.Totals, list[what_if.Verdict]]  # a window's totals and differences


def judged(
    app: App, *, states: Sequence[str] = (), number: str | None = None, jobs: int = 1
) -> Iterator[Judged]:
    """Every selected registration judged, a window of ids at a time, in id order; in `jobs`
    processes (each with its own connection) when more than one."""
    ctx = app.context()
    if jobs <= 1:
        settle_heap()  # a window keeps thousands of lives alive: the collector skips the rest
        for verdicts in what_if.verdicts(app.store, ctx, states=states, number=number):
            yield _totals(verdicts)
        return
    low, high = app.store.ids()
    windows = [(after, after + WINDOW) for after in range(low - 1, high, WINDOW)]
    with ProcessPoolExecutor(jobs, initializer=_start, initargs=(app.settings, ctx)) as pool:
        yield from pool.map(_window, windows, [tuple(states)] * len(windows))


_worker: tuple[port.Store, Context] | None = None  # a pool process's own store and context


def _start(settings: Settings, ctx: Context) -> None:
    global _worker
    _worker = (open_store(settings.database_url), ctx)
    settle_heap()


def _window(window: tuple[int, int], states: Sequence[str]) -> Judged:
    assert _worker is not None
    store, ctx = _worker
    after, up_to = window
    judged_here = what_if.verdicts(store, ctx, states=states, after=after, up_to=up_to)
    totals, differing = what_if.Totals(), []
    for verdicts in judged_here:
        part, shown = _totals(verdicts)
        totals += part
        differing += shown
    return totals, differing


def _totals(verdicts: list[what_if.Verdict]) -> Judged:
    totals = what_if.Totals()
    for verdict in verdicts:
        totals.count(verdict)
    return totals, [v for v in verdicts if v.differs]


def _text(verdict: what_if.Verdict) -> str:
    lines = [verdict.registration_number]
    if not verdict.replayable:
        lines.append("  not replayable: a message's body is no longer archived")
    for name, (was, now) in verdict.fields.items():
        lines.append(f"  {name}: decided {_plain(was)}, now {_plain(now)}")
    for step in verdict.events:
        lines.append(
            f"  {step['on']} {step['cause']}: decided {step['decided'] or 'nothing'},"
            f" now {step['now'] or 'nothing'}"
        )
    for change, timers in verdict.timers.items():
        for timer in timers:
            lines.append(f"  timer {change}: {timer}")
    return "\n".join(lines)


def _plain(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _summary(totals: what_if.Totals, shown: int) -> str:
    differ = totals.registrations - totals.same - totals.erased
    return (
        f"{totals.registrations} registrations replayed: {totals.same} the same, {differ} differ"
        f" (state or dates {totals.fields}, events {totals.events}, timers {totals.timers},"
        f" not replayable {totals.unreplayable}), {totals.erased} erased (R19); {shown} shown"
    )
