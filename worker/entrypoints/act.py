"""`kmo-worker act`: the back office's and the desk's acts on a case (R14-R17, R19) as messages,
shown first as the worker would decide them (the same pure core), then published unless
`--dry-run`. `kmo-worker publish --dry-run` shows any message file the same way."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from worker.adapters.store import port
from worker.bootstrap import App
from worker.domain import lifecycle
from worker.entrypoints import explain
from worker.service import cases, intake

ACTS = {  # subcommand -> (message type, CloudEvents source, role that publishes it)
    "withdraw": ("registration.withdrawn", "urn:kmo:e-loket", "desk"),
    "stop": ("registration.stop_ordered", "urn:kmo:back-office", "back_office"),
    "extend": ("deadline.extended", "urn:kmo:back-office", "back_office"),
    "retract": ("message.retracted", "urn:kmo:back-office", "back_office"),
    "erase": ("registration.erasure_requested", "urn:kmo:back-office", "back_office"),
}
# What every event says; the preview shows the rest.
COMMON = frozenset({"registration", "recipient", "registration_number", "state", "notify"})


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    explain.add_locating_arguments(parser)
    retracts = name == "retract"  # R17: actor and reference are the publisher's to give, or not
    if retracts:
        parser.add_argument(
            "--message-id", required=True, help="the CloudEvents id of the message taken back"
        )
    parser.add_argument(
        "--actor", required=not retracts, help="who acts (a person's id or account)"
    )
    parser.add_argument("--reason", required=True, help="why, in a sentence (kept in the history)")
    parser.add_argument("--reference", required=not retracts, help="the file or decision reference")
    if name == "extend":
        parser.add_argument("--deadline", required=True, choices=["follow_up", "reaction"])
        parser.add_argument("--until", required=True, metavar="DATE", help="the new deadline")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what it would do; publish nothing"
    )
    parser.add_argument("--user", help="AMQP user_id to set (default: the broker URL's user)")
    parser.add_argument("--json", action="store_true", help="the preview as JSON")


def document(args: argparse.Namespace, found: port.Stored) -> dict[str, Any]:
    type_name, source, _role = ACTS[args.act]
    given = {"actor": args.actor, "reason": args.reason, "reference": args.reference}
    data: dict[str, Any] = {
        "registration": found.registration.key.model_dump(),
        **{name: value for name, value in given.items() if value is not None},
    }
    if args.act == "retract":
        data["retracted_id"] = args.message_id
    if args.act == "extend":
        data |= {"deadline": args.deadline, "until": args.until}
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": type_name,
        "datacontenttype": "application/json",
        "data": data,
    }


def check(app: App, body: bytes, user: str | None) -> intake.Accepted | intake.Rejected:
    """The intake the worker will apply: size, JSON, type, schema, publisher."""
    properties = {"user_id": user} if user else {}
    return intake.check(body, properties, app.validators, app.settings)


def stored_for(store: port.Store, accepted: intake.Accepted) -> port.Stored | None:
    key = port.key_tuple(lifecycle.key_of(accepted.data))
    return next((s for s in store.find(key[0]) if port.key_tuple(s.registration.key) == key), None)


def show(app: App, document: dict[str, Any], user: str | None, as_json: bool) -> bool:
    """Print what the worker would do with `document` today; False if it would not take it."""
    verdict = check(app, json.dumps(document, ensure_ascii=False).encode(), user)
    if isinstance(verdict, intake.Rejected):
        what = {"dead_lettered": verdict.reason, "error": verdict.error}
        print(
            json.dumps(what)
            if as_json
            else f"would be dead-lettered {verdict.reason}: {verdict.error}"
        )
        return False
    found = stored_for(app.store, verdict)
    shown = cases.preview(app.store, found, verdict, app.context())
    print(json.dumps(_as_json(shown, document)) if as_json else _text(shown, document))
    return not any(e["type"] == "message.ignored" for e in shown.events)


def _as_json(shown: cases.Preview, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "message": {"type": document["type"], "id": document["id"]},
        "before": cases.summary(shown.before) if shown.before else None,
        "after": cases.summary(shown.after) if shown.after else None,
        "rule": shown.rule,
        "note": shown.note,
        "events": shown.events,
        "timers_cancelled": [_timer(t) for t in shown.timers_cancelled],
        "timers_added": [_timer(t) for t in shown.timers_added],
    }


def _timer(timer: Any) -> dict[str, Any]:
    return {
        "due": timer.due.isoformat(),
        "kind": timer.kind,
        "deadline": timer.deadline.isoformat(),
    }


def _text(shown: cases.Preview, document: dict[str, Any]) -> str:
    before, after = shown.before, shown.after
    held = after or before
    name = held.number if held else "no registration"
    lines = [f"{document['type']} {document['id']} for {name}"]
    if before is None:
        lines.append("  no registration holds this key yet")
    state_before = before.state.value if before else "—"
    state_after = after.state.value if after else "—"
    lines.append(f"  state     {state_before} → {state_after}  [{shown.rule}] {shown.note}")
    for event in shown.events:
        data = event["data"]
        extra = {
            k: v
            for k, v in data.items()
            if k not in ("registration", "recipient", "registration_number", "state", "notify")
        }
        lines.append(f"  event     {event['type']} {json.dumps(extra, ensure_ascii=False)}")
    for timer in shown.timers_cancelled:
        lines.append(f"  cancels   {timer.kind} due {timer.due} (for {timer.deadline})")
    for timer in shown.timers_added:
        lines.append(f"  schedules {timer.kind} due {timer.due} (for {timer.deadline})")
    return "\n".join(lines)


def act(app: App, args: argparse.Namespace, user: str | None, publish: Any) -> int:
    """`publish(document, user)` sends one message inbound (the CLI's own publishing); `user` is
    the AMQP user_id it will carry, so the preview applies the worker's own publisher check."""
    found = explain.locate(app.store, args)
    if isinstance(found, str):
        print(f"kmo-worker act: {found}", file=sys.stderr)
        return 1
    message = document(args, found)
    takes = show(app, message, user, args.json)
    if args.dry_run:
        return 0 if takes else 1
    if not takes:
        print(
            "kmo-worker act: not published: the worker would not take it (see above)",
            file=sys.stderr,
        )
        return 1
    publish(message, user)
    if not args.json:
        print(f"published {message['type']} {message['id']}")
    return 0
