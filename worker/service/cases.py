"""A case explained, and an act previewed: what the back office and the operators ask.

`explain` turns what the store holds about one registration into its story: each change of
state with its cause, rule and sentence of the procedure, the events it published; the ignored
and dead-lettered messages; what comes next. `preview` runs a message through the same pure core
the worker runs, against the registration as stored, and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from worker.adapters.store import port
from worker.contracts import envelope
from worker.contracts.inbound import Retraction
from worker.contracts.outbound import TYPE_OF
from worker.domain import lifecycle, rules, schedule
from worker.domain.model import Context, Registration
from worker.domain.outcome import Message
from worker.service import lives
from worker.service.intake import Accepted


def explain(store: port.Store, found: port.Stored, today: dt.date) -> dict[str, Any]:
    case = store.case_file(found)
    changes = [row for row in case.history if row["rule"] != "R11"]
    published = {
        row["cause_id"]: _event_ids(row["cause_id"], row["events"]) for row in case.history
    }
    sent = store.sent_at([event_id for ids in published.values() for event_id, _ in ids])
    fixes = _corrections(store, case, published)
    story = [_change(row, published[row["cause_id"]], sent) for row in changes]
    for change in story:
        _mark_corrections(change, fixes)
    messages = [_message(row, fixes) for row in case.archive]
    return {
        "registration": summary(found.registration) | {"pruned_on": _iso(case.pruned_on)},
        "changes": story,
        "ignored": [m for m in messages if m["outcome"] == "ignored"],
        "messages": messages,
        "dead_letters": [_plain(row) for row in case.dead_letters],
        "next": [_next(timer, today) for timer in case.pending],
    }


def summary(registration: Registration) -> dict[str, Any]:
    key, period = registration.key, registration.period
    return {
        "registration_number": registration.number,
        "enterprise_number": key.enterprise_number,
        "service": key.service,
        "unit": key.unit.model_dump(),
        "state": registration.state.value,
        "since": registration.state_since.isoformat(),
        "cycle": registration.cycle,
        "starter": registration.starter,
        "bureau": registration.bureau,
        "period": period.model_dump(mode="json") if period else None,
        "follow_up_deadline": _iso(registration.follow_up_deadline),
        "reaction_deadline": _iso(registration.reaction_deadline),
        "declaration_on": _iso(registration.declaration_on),
        "erased_on": _iso(registration.erased_on),
    }


def _event_ids(cause_id: str, types: list[str]) -> list[tuple[str, str]]:
    """The ids the events of one cause were published under: deterministic (contract.md)."""
    return [(envelope.event_id(cause_id, i, name), name) for i, name in enumerate(types)]


def _change(
    row: dict[str, Any], events: list[tuple[str, str]], sent: dict[str, dt.datetime | None]
) -> dict[str, Any]:
    rule = rules.describe(row["rule"])
    timer = row["cause_type"].startswith(schedule.TIMED)
    on_time = row["cause_type"] == lives.ERASED_ON_TIME
    kind = "timer" if timer else "retention" if on_time else "message"
    cause = {"kind": kind, "type": row["cause_type"]}
    if kind == "message":
        cause["id"] = row["cause_id"]
    for name in ("publisher", "bureau", "actor", "reason", "reference"):
        if row.get(name):
            cause[name] = row[name]
    return {
        "business_date": _iso(row["business_date"]),
        "recorded_at": _iso(row["recorded_at"]),
        "from_state": row["from_state"],
        "to_state": row["to_state"],
        "rule": row["rule"],
        "rule_title": rule.title,
        "procedure": rule.source,
        "note": row["note"],
        "cause": cause,
        "events": [
            {"type": name, "id": event_id, "sent_at": _iso(sent.get(event_id))}
            for event_id, name in events
        ],
    }


class _Fixes(NamedTuple):
    """R17: per retraction that took effect, what it took back and the events it superseded."""

    retracted: dict[str, str]  # retraction id -> the message it took back
    superseded: dict[str, list[str]]  # retraction id -> event ids


def _corrections(
    store: port.Store, case: port.CaseFile, published: dict[str, list[tuple[str, str]]]
) -> _Fixes:
    took_effect = {row["cause_id"] for row in case.history if row["rule"] == "R17"}
    retracted = {
        row["message_id"]: orjson.loads(row["body"])["data"]["retracted_id"]
        for row in case.archive
        if row.get("body") and row["message_id"] in took_effect
    }
    corrections = [
        (cause, event_id)
        for cause in retracted
        for event_id, name in published.get(cause, [])
        if name == "decision.corrected"
    ]
    bodies = store.bodies([event_id for _, event_id in corrections])
    superseded = {
        cause: orjson.loads(bodies[event_id])["data"]["superseded"]
        for cause, event_id in corrections
        if event_id in bodies
    }
    return _Fixes(retracted, superseded)


def _mark_corrections(change: dict[str, Any], fixes: _Fixes) -> None:
    cause = change["cause"].get("id")
    if cause in fixes.retracted:
        change["retracted_id"] = fixes.retracted[cause]
        change["superseded"] = fixes.superseded.get(cause, [])
    by_event = {e: r for r, events in fixes.superseded.items() for e in events}
    for event in change["events"]:
        if event["id"] in by_event:
            event["superseded_by"] = by_event[event["id"]]


def _message(row: dict[str, Any], fixes: _Fixes) -> dict[str, Any]:
    shown = _plain({k: v for k, v in row.items() if v is not None and k != "body"})
    by = next((r for r, target in fixes.retracted.items() if target == row["message_id"]), None)
    if by is not None:
        shown["retracted_by"] = by
    return shown


def _next(timer: schedule.Timer, today: dt.date) -> dict[str, Any]:
    rule, effect = rules.TIMER_EFFECTS[timer.kind]
    return {
        "due": timer.due.isoformat(),
        "in_days": (timer.due - today).days,
        "kind": timer.kind,
        "deadline": timer.deadline.isoformat(),
        "days_before": timer.offset_days,
        "rule": rule,
        "effect": effect,
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _iso(value) if isinstance(value, dt.date) else value for name, value in row.items()
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


# -- preview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What a message would do to a registration, as the worker would decide it today."""

    before: Registration | None
    after: Registration | None
    rule: str
    note: str
    events: list[dict[str, Any]]
    timers_cancelled: list[schedule.Timer]
    timers_added: list[schedule.Timer]


def preview(
    store: port.Store, found: port.Stored | None, message: Accepted, ctx: Context
) -> Preview:
    before = found.registration if found else None
    decided = Message(message.id, message.data, message.publisher)
    if isinstance(message.data, Retraction):
        with store.transaction() as tx:  # read only: the life, for the replay (R17)
            outcome = lives.retract(tx, found.id if found else None, before, decided, ctx)
    else:
        number = None
        if lifecycle.needs_number(before, message.data):
            number = port.PREFIX[message.data.registration.service] + "000000"  # not drawn
        outcome = lifecycle.decide(before, decided, ctx, number)
    after = outcome.registration if outcome.registration is not None else before
    had = schedule.timers_for(before, ctx.offsets) if before else frozenset()
    wants = schedule.timers_for(after, ctx.offsets) if after else frozenset()
    return Preview(
        before,
        after,
        outcome.rule,
        outcome.note,
        [{"type": TYPE_OF[type(e)], "data": e.model_dump(mode="json")} for e in outcome.events],
        sorted(had - wants),
        sorted(wants - had),
    )
