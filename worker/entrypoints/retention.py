"""`kmo-worker retention`: a retention pass now (R19, R20), as the worker runs one every ten
minutes: personal data of registrations closed `KMO_ERASURE_YEARS` ago erased, then every row
past its window deleted, batch by batch. Safe beside running workers (`SKIP LOCKED`)."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from worker.bootstrap import App
from worker.consumer import retention as running
from worker.entrypoints import progress
from worker.service import retention


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="the counts as one JSON object")
    parser.add_argument("--today", type=dt.date.fromisoformat, help="the business date")


def run(app: App, args: argparse.Namespace) -> int:
    done: dict[str, int] = {}
    work = running.Retention(app)
    with progress.bar(None, "rows", quiet=args.json) as bar:
        for batch in work.batches():
            done[batch.table] = done.get(batch.table, 0) + batch.rows
            bar.update(batch.rows)
            bar.set_postfix_str(batch.table, refresh=False)
    work.finished(done, logged=False)  # said below
    windows = retention.Windows.of(app.settings)
    if args.json:
        print(json.dumps({"erased": done.pop("erased", 0), "deleted": done}))
        return 0
    erased = done.pop("erased", 0)
    rows = ", ".join(f"{table} {count:,}" for table, count in done.items())
    print(f"{erased} registrations erased (R19); rows deleted: {rows or 'none'}")
    print(f"windows: {json.dumps(vars(windows))}")
    return 0
