"""`kmo-worker find`: registrations by state, service, unit, bureau, cycle and date windows."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys

from worker.adapters.store import port
from worker.bootstrap import App
from worker.contracts.common import State
from worker.domain import dates, identifiers
from worker.service import cases

WINDOW_FLAGS = {  # flag stem -> the window it sets
    "end": "period_end",
    "follow-up": "follow_up_deadline",
    "reaction": "reaction_deadline",
    "due": "next_due",
}
RELATIVE = re.compile(r"^(today|[+-]\d+d|end-of-month|end-of-next-month)$")
COLUMNS = (
    ("number", 10),
    ("enterprise", 10),
    ("service", 8),
    ("unit", 17),
    ("state", 24),
    ("since", 10),
    ("cycle", 5),
    ("bureau", 10),
    ("period end", 10),
    ("follow-up by", 12),
    ("react by", 10),
    ("next due", 10),
)


def day(today: dt.date, text: str) -> dt.date:
    """An ISO date, or relative to the business date: today, +30d, -7d, end-of-month,
    end-of-next-month."""
    if not RELATIVE.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a date (YYYY-MM-DD, today, +30d, end-of-next-month)"
            ) from None
    if text == "today":
        return today
    if text.endswith("d"):
        return today + dt.timedelta(days=int(text[:-1]))
    months = 1 if text == "end-of-month" else 2
    return dates.add_months(today.replace(day=1), months) - dt.timedelta(days=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    states = [state.value for state in State]
    parser.add_argument("--state", action="append", choices=states, help="repeat for several")
    parser.add_argument("--service", choices=["training", "advice"])
    parser.add_argument("--unit", choices=["registered_office", "department"])
    parser.add_argument("--bureau", help="the audit bureau of record (enterprise number)")
    parser.add_argument("--cycle", type=int, help="1 for a first request, 2 after one ended")
    for stem, name in WINDOW_FLAGS.items():
        what = "the next timer" if name == "next_due" else name.replace("_", " ")
        for side in ("after", "before"):
            parser.add_argument(
                f"--{stem}-{side}",
                metavar="DATE",
                help=f"{what} on or {side} DATE (YYYY-MM-DD, today, +30d, end-of-next-month)",
            )
    parser.add_argument("--limit", type=int, default=100, help="rows a page (default 100)")
    parser.add_argument("--after", metavar="CURSOR", help="the page after this cursor")
    parser.add_argument("--json", action="store_true", help="NDJSON, a registration a line")


def query_of(args: argparse.Namespace, today: dt.date) -> port.CaseQuery:
    """The query the flags ask for; a wrong value raises `ValueError` naming the flag."""
    windows: dict[str, port.Window] = {}
    for stem, name in WINDOW_FLAGS.items():
        after, before = (
            getattr(args, f"{stem}_{side}".replace("-", "_")) for side in ("after", "before")
        )
        if after or before:
            bounds = [
                _flag_day(today, f"--{stem}-{side}", text)
                for side, text in (("after", after), ("before", before))
            ]
            windows[name] = port.Window(*bounds)
    bureau = None
    if args.bureau:
        if not identifiers.is_valid_enterprise_number(args.bureau):
            raise ValueError(f"--bureau: {args.bureau!r} is not a valid enterprise number")
        bureau = identifiers.normalise_enterprise_number(args.bureau)
    if not 1 <= args.limit <= 10_000:
        raise ValueError("--limit: from 1 to 10000")
    if args.after and not re.match(r"^(\d{4}-\d\d-\d\d\|)?[\w.]+$", args.after):
        raise ValueError(f"--after: {args.after!r} is not a cursor that find printed")
    return port.CaseQuery(
        states=tuple(args.state or ()),
        service=args.service,
        unit_kind=args.unit,
        bureau=bureau,
        cycle=args.cycle,
        windows=windows,
        limit=args.limit,
        after=args.after,
    )


def _flag_day(today: dt.date, flag: str, text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return day(today, text)
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"{flag}: {error}") from None


def find(app: App, args: argparse.Namespace) -> int:
    try:
        query = query_of(args, app.clock.today())
    except ValueError as error:
        print(f"kmo-worker find: {error}", file=sys.stderr)
        return 2
    found = app.store.search(query)
    page, more = found[: query.limit], len(found) > query.limit
    if args.json:
        for row in page:
            line = cases.summary(row.stored.registration) | {"next_due": _iso(row.next_due)}
            print(json.dumps(line, ensure_ascii=False))
        if more:
            print(json.dumps({"next_page": page[-1].cursor}))
        return 0
    print(_table(page))
    if more:
        print(f"\nmore: --after '{page[-1].cursor}'")
    return 0


def _table(page: list[port.Found]) -> str:
    lines = ["  ".join(title.ljust(width) for title, width in COLUMNS).rstrip()]
    for row in page:
        r = row.stored.registration
        unit = (
            r.key.unit.kind
            if r.key.unit.kind == "registered_office"
            else f"dept {r.key.unit.department_id}"
        )
        values = (
            r.number,
            r.key.enterprise_number,
            r.key.service,
            unit,
            r.state.value,
            r.state_since,
            r.cycle,
            r.bureau,
            r.period.end if r.period else None,
            r.follow_up_deadline,
            r.reaction_deadline,
            row.next_due,
        )
        cells = (str(v or "—").ljust(w) for v, (_t, w) in zip(values, COLUMNS, strict=True))
        lines.append("  ".join(cells).rstrip())
    lines.append(f"({len(page)} registration{'s' if len(page) != 1 else ''})")
    return "\n".join(lines)


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None
