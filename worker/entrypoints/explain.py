"""`kmo-worker explain`: one registration's story, for the back office and on-call."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from worker.adapters.store import port
from worker.bootstrap import App
from worker.contracts.common import REGISTRATION_NUMBER
from worker.domain import identifiers
from worker.service import cases


def add_locating_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "registration", help="a registration number (DV.A000123) or an enterprise number"
    )
    parser.add_argument("--service", choices=["training", "advice"])
    parser.add_argument(
        "--unit", metavar="DEPARTMENT_ID", help="a department's id (default: any unit)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_locating_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object")


def locate(store: port.Store, args: argparse.Namespace) -> port.Stored | str:
    """The registration the arguments name, or why none is (one line for people)."""
    given = args.registration.strip()
    if re.match(REGISTRATION_NUMBER, given.upper()):
        found = store.by_number(given.upper())
        return found or f"no registration {given.upper()}"
    if not identifiers.is_valid_enterprise_number(given):
        return (
            f"{given!r} is neither a registration number (DV.A000123) nor a valid enterprise number"
        )
    number = identifiers.normalise_enterprise_number(given)
    matches = [
        s
        for s in store.find(number)
        if args.service in (None, s.registration.key.service) and _unit_matches(s, args.unit)
    ]
    if not matches:
        return f"no registration for enterprise number {number}"
    if len(matches) > 1:
        names = ", ".join(
            f"{s.registration.number} ({s.registration.key.service})" for s in matches
        )
        hint = "name one, or give --service/--unit"
        return f"{number} holds {len(matches)} registrations: {names}; {hint}"
    return matches[0]


def _unit_matches(found: port.Stored, department: str | None) -> bool:
    unit = found.registration.key.unit
    if department is None:
        return True
    return unit.kind == "department" and unit.department_id == department


def explain(app: App, args: argparse.Namespace) -> int:
    found = locate(app.store, args)
    if isinstance(found, str):
        print(f"kmo-worker explain: {found}", file=sys.stderr)
        return 1
    story = cases.explain(app.store, found, app.clock.today())
    print(json.dumps(story, ensure_ascii=False, indent=2) if args.json else render(story))
    return 0


def render(story: dict[str, Any]) -> str:
    r = story["registration"]
    unit = r["unit"]["kind"] + (
        f" {r['unit']['department_id']}" if "department_id" in r["unit"] else ""
    )
    lines = [
        f"{r['registration_number']}  {r['enterprise_number']}  {r['service']}  {unit}",
        f"  {r['state']} since {r['since']}, cycle {r['cycle']}"
        + (f", bureau of record {r['bureau']}" if r["bureau"] else ""),
    ]
    if r["period"]:
        lines.append(f"  period {r['period']['start']} to {r['period']['end']}")
    for name, label in (("follow_up_deadline", "follow-up by"), ("reaction_deadline", "react by")):
        if r[name]:
            lines.append(f"  {label} {r[name]}")
    if r["erased_on"]:
        lines.append(f"  personal data erased on {r['erased_on']} [R19]")
    if r.get("pruned_on"):
        lines.append(f"  history and archive before {r['pruned_on']} deleted by retention [R20]")
    lines += ["", "What happened"]
    for change in story["changes"]:
        lines += _change_lines(change)
    if story["ignored"]:
        lines += ["", "Ignored messages (changed nothing)"]
        for m in story["ignored"]:
            what = f"{m['type']} {m['message_id']}"
            lines.append(f"  {m.get('business_date')}  {what}  reason {m.get('reason')}{_by(m)}")
    if story["dead_letters"]:
        lines += ["", "Dead-lettered messages (on kmo.dead-letter; `kmo-worker dead-letters list`)"]
        for d in story["dead_letters"]:
            what = f"{d.get('type') or '?'} {d.get('message_id') or '?'}"
            lines.append(f"  {d['dead_lettered_at']}  {what}  {d['reason']}: {d['error']}")
    lines += ["", "What comes next"]
    if not story["next"]:
        lines.append("  nothing: no deadline or notice is pending")
    for n in story["next"]:
        when = f"{n['due']} (in {n['in_days']} days)"
        lines.append(f"  {when}  {n['kind']} for {n['deadline']}: {n['effect']} [{n['rule']}]")
    return "\n".join(lines)


def _change_lines(change: dict[str, Any]) -> list[str]:
    cause = change["cause"]
    before = change["from_state"] or "—"
    rule = f"[{change['rule']}: {change['rule_title']}]"
    lines = [f"  {change['business_date']}  {before} → {change['to_state']}  {rule}"]
    if cause["kind"] == "timer":
        lines.append(f"      by the timer {cause['type']}")
    elif cause["kind"] == "retention":
        lines.append("      by retention, KMO_ERASURE_YEARS after the registration closed")
    else:
        lines.append(f"      by {cause['type']} {cause['id']}{_by(cause)}")
    for name in ("actor", "reason", "reference"):
        if cause.get(name):
            lines.append(f"      {name}: {cause[name]}")
    if change["note"]:
        lines.append(f"      note: {change['note']}")
    if "retracted_id" in change:
        lines.append(f"      took back: {change['retracted_id']}")
        for superseded in change["superseded"]:
            lines.append(f"      supersedes: {superseded}")
    if change["procedure"]:
        lines.append(f"      procedure: {change['procedure']}")
    for e in change["events"]:
        sent = f"sent {e['sent_at']}" if e["sent_at"] else "not yet sent"
        if e.get("superseded_by"):
            sent += f"; superseded: {e['superseded_by']} took its cause back"
        lines.append(f"      → {e['type']} {e['id']} ({sent})")
    return lines


def _by(row: dict[str, Any]) -> str:
    parts = [f"account {row['publisher']}"] if row.get("publisher") else []
    if row.get("bureau"):
        parts.append(f"bureau {row['bureau']}")
    return f" ({', '.join(parts)})" if parts else ""
