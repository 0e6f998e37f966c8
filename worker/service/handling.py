"""One transaction per message or timer: inbox, state, history, timers and outbox together.

Nothing here acks or publishes: the consumer acks after `handle` returns (the transaction has
committed by then), and the relay publishes what the outbox holds.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from worker.adapters import repository
from worker.contracts.outbound import TYPE_OF, Ignored
from worker.contracts.schemas import Validators
from worker.domain import lifecycle, schedule
from worker.domain.model import Context
from worker.domain.outcome import Message, Outcome
from worker.service import envelopes
from worker.service.intake import Accepted


@dataclass(frozen=True)
class Handled:
    """What became of a message or timer, for the log and the metrics."""

    outcome: str  # handled | ignored | duplicate | stale
    registration_number: str | None
    events: tuple[str, ...]
    rule: str = ""


@dataclass(frozen=True)
class Shell:
    engine: Engine
    source: str
    validators: Validators | None = None  # validate every outbound event before it is stored
    skip_locked: bool = False


def handle(shell: Shell, message: Accepted, ctx: Context, now: dt.datetime) -> Handled:
    with shell.engine.begin() as db:
        if repository.seen(db, message.id):
            return Handled("duplicate", None, ())
        key = lifecycle.key_of(message.data)
        stored = repository.load(db, key, lock=True)
        before = stored.registration if stored else None
        number = None
        if lifecycle.needs_number(before, message.data):
            number = repository.next_number(db, key.service)
        outcome = lifecycle.decide(before, Message(message.id, message.data), ctx, number)
        handled = _apply(shell, db, stored, outcome, message.id, message.type, ctx, now)
        repository.remember(db, message.id, message.type, handled.outcome, now)
        return handled


def fire(shell: Shell, due: repository.DueTimer, ctx: Context, now: dt.datetime) -> Handled:
    """Fire one claimed timer inside the caller's transaction."""
    with shell.engine.begin() as db:
        return fire_in(shell, db, due, ctx, now)


def fire_in(
    shell: Shell, db: Connection, due: repository.DueTimer, ctx: Context, now: dt.datetime
) -> Handled:
    # The sweep holds the timer row; a consumer may hold the registration and want to replace
    # its timers. Waiting here would close a deadlock cycle, so a busy registration's timer is
    # left for the next sweep instead.
    stored = repository.load_by_id(
        db, due.registration_id, lock=True, skip_locked=shell.skip_locked
    )
    if stored is None:
        return Handled("busy", None, ())
    repository.mark_fired(db, due.id, now)
    outcome = lifecycle.fire(stored.registration, due.timer, ctx)
    cause = f"{stored.registration.number}:{due.timer.cause_id}"
    return _apply(shell, db, stored, outcome, cause, due.timer.kind, ctx, now)


def _apply(
    shell: Shell,
    db: Connection,
    stored: repository.Stored | None,
    outcome: Outcome,
    cause_id: str,
    cause_type: str,
    ctx: Context,
    now: dt.datetime,
) -> Handled:
    wrapped = envelopes.wrap(outcome.events, cause_id, shell.source, now)
    if shell.validators is not None:
        _check_outbound(shell.validators, wrapped)
    repository.enqueue(db, wrapped, now)
    types = tuple(TYPE_OF[type(event)] for event in outcome.events)
    after = outcome.registration
    ignored = any(isinstance(event, Ignored) for event in outcome.events)
    label = "ignored" if ignored else "handled"
    if after is None:
        return Handled(label, None, types, outcome.rule)
    before = stored.registration if stored else None
    if stored is None:
        registration_id = repository.insert_registration(db, after, now)
    else:
        registration_id = stored.id
        if after != before:
            repository.update_registration(db, stored, after, now)
    if after != before:
        repository.replace_timers(db, registration_id, schedule.timers_for(after, ctx.offsets))
    if after != before or types:
        entry = repository.HistoryEntry(
            cause_id, cause_type, ctx.today, outcome.rule, outcome.note, types
        )
        previous = before.state if before else None
        repository.add_history(db, registration_id, previous, after.state, entry, now)
    return Handled(label, after.number, types, outcome.rule)


class OutboundContractError(Exception):
    """The core produced an event its schema rejects: a bug; the message is not acked as done."""


def _check_outbound(validators: Validators, wrapped: list[tuple[str, str, str]]) -> None:
    for _, type_name, body in wrapped:
        violation = validators.first_violation(type_name, json.loads(body))
        if violation is not None:
            raise OutboundContractError(f"{type_name}: {violation}")
