"""`kmo-worker reschedule`: make the pending timers of every live registration follow the settings
in force (R18), e.g. after a change of `KMO_NOTICE_OFFSETS`. The worker does the same on its own
(the sweep moves the pass on a batch at a time); this runs it to the end now, or with `--dry-run`
says what it would change."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator

from worker.bootstrap import App
from worker.domain import schedule
from worker.domain.model import TERMINAL
from worker.entrypoints import progress
from worker.service import reschedule

BUSY_PAUSE_SECONDS = 1.0  # another process holds the pass (a replica's sweep): wait for its batch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="count what it would change; change nothing"
    )
    parser.add_argument("--json", action="store_true", help="the counts as one JSON object")
    parser.add_argument("--today", type=dt.date.fromisoformat, help="the business date")


def run(app: App, args: argparse.Namespace) -> int:
    live = sum(n for state, n in app.store.count_by_state().items() if state not in TERMINAL)
    total = reschedule.Counts()
    with progress.bar(live, "registrations", quiet=args.json) as bar:
        for counts in _pass(app, dry_run=args.dry_run):
            total += counts
            bar.update(counts.registrations)
    fingerprint = schedule.fingerprint(app.settings.notice_offsets)
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "fingerprint": fingerprint, **vars(total)}))
    else:
        verb = "would change" if args.dry_run else "changed"
        print(
            f"{total.registrations} live registrations looked at; {verb} {total.changed}: "
            f"{total.cancelled} timers cancelled, {total.added} added "
            f"(settings {fingerprint})"
        )
    return 0


def _pass(app: App, *, dry_run: bool) -> Iterator[reschedule.Counts]:
    """A whole pass, even where the timers were said to follow the settings (it is idempotent)."""
    if dry_run:
        yield from reschedule.plan(app.store, app.context())
        return
    reschedule.begin(app.store, app.context(), app.clock.now())
    while True:
        moved = reschedule.step(app.store, app.context(), app.clock.now())
        yield moved.counts
        if moved.done:
            return
        if moved.busy:
            time.sleep(BUSY_PAUSE_SECONDS)
