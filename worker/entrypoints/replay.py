"""`kmo-worker replay --what-if`: which registrations the code and settings as they are now would
decide differently from what was decided (R17, R18). Read only; exit 1 when any would differ, so
a deployment pipeline can stop on it."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from worker.bootstrap import App
from worker.entrypoints import progress
from worker.service import what_if


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


def run(app: App, args: argparse.Namespace) -> int:
    number = args.registration.upper() if args.registration else None
    states = list(args.state)
    counts = app.store.count_by_state()
    total = 1 if number else sum(n for s, n in counts.items() if not states or s in states)
    totals, shown = what_if.Totals(), 0
    with progress.bar(total, "registrations", quiet=args.json) as bar:
        for verdicts in what_if.verdicts(app.store, app.context(), states=states, number=number):
            for verdict in verdicts:
                totals.count(verdict)
                if verdict.differs and (args.json or shown < args.show):
                    shown += 1
                    bar.write(
                        json.dumps(dataclasses.asdict(verdict)) if args.json else _text(verdict)
                    )
            bar.update(len(verdicts))
    if args.json:
        print(json.dumps({"totals": vars(totals)}))
    else:
        print(_summary(totals, shown))
    return 1 if totals.registrations != totals.same else 0


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
    differ = totals.registrations - totals.same
    return (
        f"{totals.registrations} registrations replayed: {totals.same} the same, {differ} differ"
        f" (state or dates {totals.fields}, events {totals.events}, timers {totals.timers},"
        f" not replayable {totals.unreplayable}); {shown} shown"
    )
