"""One transaction per batch of messages or timers: inbox, state, history, timers and outbox.

A `Batch` reads what the batch needs (the inbox, the registrations, locked, numbers for new ones:
`adapters.reads`), runs each message or timer through the pure core in order, keeping every
registration's latest state in memory, and writes all effects at once (`adapters.writes`); on
PostgreSQL that is one statement each way. One message is a batch of one. Nothing here acks or
publishes: the consumer acks after the commit, and the relay publishes the events it returns.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from worker.adapters import reads, registrations, timers, writes
from worker.contracts.common import Key
from worker.contracts.envelope import Outgoing
from worker.contracts.outbound import TYPE_OF, Ignored
from worker.contracts.schemas import Validators
from worker.domain import lifecycle, schedule
from worker.domain.model import Context, Registration
from worker.domain.outcome import Message, Outcome
from worker.service import envelopes
from worker.service.intake import Accepted


@dataclass(frozen=True)
class Handled:
    """What became of a message or timer, for the log and the metrics."""

    outcome: str  # handled | ignored | duplicate | stale | busy
    registration_number: str | None
    events: tuple[str, ...]
    rule: str = ""


@dataclass(frozen=True)
class Committed:
    """What a transaction did: one `Handled` per message or timer, in order, and the events it
    put in the outbox, for the relay to send once the transaction has committed."""

    handled: list[Handled]
    events: list[Outgoing]


@dataclass(frozen=True)
class Shell:
    engine: Engine
    source: str
    validators: Validators | None = None  # validate every outbound event before it is stored
    skip_locked: bool = False


@dataclass
class _Slot:
    """One registration as the batch sees it: as read, and as it is now."""

    id: int | None = None
    version: int = 0
    read: Registration | None = None
    current: Registration | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class Batch:
    def __init__(self, shell: Shell, db: Connection, ctx: Context, now: dt.datetime) -> None:
        self.shell, self.db, self.ctx, self.now = shell, db, ctx, now
        self._by_key: dict[registrations.KeyTuple, _Slot] = {}
        self._by_id: dict[int, _Slot] = {}
        self._seen: set[str] = set()
        self._keys: dict[str, Key] = {}
        self._numbers: dict[str, list[str]] = {}
        self._ids: list[int] = []
        self._outbox: list[Outgoing] = []
        self._inbox: list[dict[str, Any]] = []
        self._fired: list[int] = []
        self._fired_timers: set[tuple[int, schedule.Timer]] = set()
        self._check = _outbound_check(shell.validators) if shell.validators else None

    # -- reading ----------------------------------------------------------------------------

    def read_for_messages(self, messages: Sequence[Accepted]) -> None:
        # Each message's key, once (a message id names one message: a second delivery of it
        # is a duplicate, whose key is never looked at).
        self._keys = {m.id: lifecycle.key_of(m.data) for m in messages}
        keys = {registrations.key_tuple(key) for key in self._keys.values()}
        # Numbers for the keys this batch may register for the first time; what is left over
        # is given back before the commit.
        may_register: dict[str, set[registrations.KeyTuple]] = defaultdict(set)
        for message in messages:
            if lifecycle.needs_number(None, message.data):
                key = registrations.key_tuple(self._keys[message.id])
                may_register[key[3]].add(key)
        read = reads.for_messages(self.db, [m.id for m in messages], keys, may_register)
        self._seen, self._numbers, self._ids = read.seen, read.numbers, read.ids
        for key, stored in read.stored.items():
            self._keep(key, stored)

    def read_for_timers(self, claimed: timers.Claimed) -> None:
        stored = claimed.registrations
        if stored is None:
            ids = [d.registration_id for d in claimed.dues]
            stored = registrations.load_many_by_id(self.db, ids)
        for registration in stored.values():
            self._keep(registrations.key_tuple(registration.registration.key), registration)

    def _keep(self, key: registrations.KeyTuple, stored: registrations.Stored) -> None:
        slot = _Slot(stored.id, stored.version, stored.registration, stored.registration)
        self._by_key[key] = slot
        self._by_id[stored.id] = slot

    # -- deciding ---------------------------------------------------------------------------

    def handle(self, message: Accepted) -> Handled:
        if message.id in self._seen:
            return Handled("duplicate", None, ())
        self._seen.add(message.id)
        key = self._keys[message.id]  # worked out by `read_for_messages`
        slot = self._by_key.setdefault(registrations.key_tuple(key), _Slot())
        number = None
        if lifecycle.needs_number(slot.current, message.data):
            number = self._numbers[key.service].pop(0)
        outcome = lifecycle.decide(
            slot.current, Message(message.id, message.data), self.ctx, number
        )
        handled = self._record(slot, outcome, message.id, message.type)
        self._inbox.append(
            {
                "message_id": message.id,
                "type": message.type,
                "handled_at": self.now,
                "outcome": handled.outcome,
            }
        )
        return handled

    def fire(self, due: timers.DueTimer) -> Handled:
        slot = self._by_id.get(due.registration_id)
        if slot is None or slot.current is None:
            # Its registration was not read with it (a row gone, or held elsewhere): the
            # timer stays due for the next sweep.
            return Handled("busy", None, ())
        self._fired.append(due.id)
        self._fired_timers.add((due.registration_id, due.timer))
        outcome = lifecycle.fire(slot.current, due.timer, self.ctx)
        cause = f"{slot.current.number}:{due.timer.cause_id}"
        return self._record(slot, outcome, cause, due.timer.kind)

    def _record(self, slot: _Slot, outcome: Outcome, cause_id: str, cause_type: str) -> Handled:
        wrapped = envelopes.wrap(outcome.events, cause_id, self.shell.source, self.now, self._check)
        self._outbox.extend(wrapped)
        types = tuple(TYPE_OF[type(event)] for event in outcome.events)
        label = "ignored" if any(isinstance(e, Ignored) for e in outcome.events) else "handled"
        before, after = slot.current, outcome.registration
        if after is None:
            return Handled(label, None, types, outcome.rule)
        if after != before or types:
            slot.history.append(
                {
                    "recorded_at": self.now,
                    "business_date": self.ctx.today,
                    "from_state": before.state.value if before else None,
                    "to_state": after.state.value,
                    "rule": outcome.rule,
                    "note": outcome.note,
                    "cause_id": cause_id,
                    "cause_type": cause_type,
                    "events": list(types),
                }
            )
        slot.current = after
        return Handled(label, after.number, types, outcome.rule)

    # -- writing ----------------------------------------------------------------------------

    @property
    def events(self) -> list[Outgoing]:
        return list(self._outbox)

    def write(self, sent: Sequence[str] = ()) -> None:
        """Everything in one go; `sent`: events the relay has published, marked on the way."""
        slots = list({id(s): s for s in self._by_key.values()}.values())
        new = [s for s in slots if s.id is None and s.current is not None]
        inserted: list[tuple[int, Registration]] = []
        if len(self._ids) >= len(new):  # ids drawn while reading: inserted with the rest
            for slot in new:
                assert slot.current is not None
                slot.id = self._ids.pop()
                inserted.append((slot.id, slot.current))
        else:
            created = [s.current for s in new if s.current]
            ids = registrations.insert_registrations(self.db, created, self.now)
            for slot, new_id in zip(new, ids, strict=True):
                slot.id = new_id
        changed = [s for s in slots if s.read is not None and s.current != s.read]
        w = writes.Writes(
            inserted=inserted,
            returned={service: len(unused) for service, unused in self._numbers.items() if unused},
            changed=[(s.id, s.version, s.current) for s in changed if s.id and s.current],
            fired=self._fired,
            outbox=self._outbox,
            inbox=self._inbox,
            sent=list(sent),
        )
        for slot in (*new, *changed):
            assert slot.id is not None
            assert slot.current is not None
            # Timers follow from the state: what the state as read had, less what it has now.
            had = schedule.timers_for(slot.read, self.ctx.offsets) if slot.read else frozenset()
            wants = schedule.timers_for(slot.current, self.ctx.offsets)
            # A timer fired in this batch stays as a record: nothing to cancel.
            w.cancel += [
                (slot.id, x) for x in had - wants if (slot.id, x) not in self._fired_timers
            ]
            w.add += [(slot.id, timer) for timer in wants - had]
        w.history = [{**row, "registration_id": s.id} for s in slots for row in s.history]
        writes.apply(self.db, w, self.now)


def handle_batch(
    shell: Shell,
    messages: Sequence[Accepted],
    ctx: Context,
    now: dt.datetime,
    sent: Sequence[str] = (),
) -> Committed:
    """All messages in one transaction, in order; any failure rolls the whole batch back.
    `sent`: ids of events the relay has published, marked sent in the same transaction (a
    round trip saved; if it rolls back they stay unmarked, which only risks publishing again)."""
    with shell.engine.begin() as db:
        batch = Batch(shell, db, ctx, now)
        batch.read_for_messages(messages)
        handled = [batch.handle(message) for message in messages]
        batch.write(sent)
    return Committed(handled, batch.events)


def handle(shell: Shell, message: Accepted, ctx: Context, now: dt.datetime) -> Committed:
    return handle_batch(shell, [message], ctx, now)


def fire_batch(
    shell: Shell,
    db: Connection,
    claimed: timers.Claimed,
    ctx: Context,
    now: dt.datetime,
) -> Committed:
    """Claimed timers, in due order, inside the caller's transaction (committed when it is)."""
    batch = Batch(shell, db, ctx, now)
    batch.read_for_timers(claimed)
    handled = [batch.fire(due) for due in claimed.dues]
    batch.write()
    return Committed(handled, batch.events)


class OutboundContractError(Exception):
    """The core produced an event its schema rejects: a bug; the message is not acked as done."""


def _outbound_check(validators: Validators) -> envelopes.Check:
    def check(type_name: str, envelope: dict[str, Any]) -> None:
        violation = validators.check(type_name, envelope, own_time=True)
        if violation is not None:
            raise OutboundContractError(f"{type_name}: {violation}")

    return check
