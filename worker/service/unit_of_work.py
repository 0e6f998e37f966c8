"""One transaction for a batch of messages or of due timers: inbox, state, history, timers and
outbox, read at once, decided by the pure core in order, written at once.

The unit of work keeps every registration's latest state in memory while the batch runs, so two
messages about one registration in one batch see each other. It neither acks nor publishes: the
engine acks once the transaction has committed and publishes the events it returns.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.adapters.store import port
from worker.contracts import inbound
from worker.contracts.common import Key
from worker.contracts.envelope import Carried, Outgoing
from worker.contracts.outbound import TYPE_OF, Ignored
from worker.domain import actions, lifecycle, replay, schedule
from worker.domain.identifiers import normalise_enterprise_number as normalise
from worker.domain.model import Context, Registration
from worker.domain.outcome import Message, Outcome
from worker.service import envelopes, lives
from worker.service.intake import Accepted

Join = Callable[[port.Transaction], None]  # a participant's writes, added to the transaction
# A timer about to fire, and its registration's number: the trace its events continue (#19).
TimerTrace = Callable[[port.DueTimer, str], Carried | None]


@dataclass(frozen=True)
class Result:
    """What became of one message or timer, for the log and the metrics."""

    outcome: str  # handled | ignored | duplicate | busy
    registration_number: str | None
    events: tuple[str, ...]
    rule: str = ""
    reason: str = ""  # why it was ignored (R11)


@dataclass(frozen=True)
class Committed:
    """One `Result` per message or timer, in order, and the events the transaction put in the
    outbox, to be published now that it has committed."""

    results: list[Result]
    events: list[Outgoing]


def handle_messages(
    store: port.Store,
    wrap: envelopes.Envelopes,
    messages: Sequence[Accepted],
    ctx: Context,
    now: dt.datetime,
    join: Join | None = None,
    carried: Sequence[Carried] | None = None,
) -> Committed:
    """All messages in one transaction, in order; any failure rolls the whole batch back.
    `join` may add its own writes to the transaction (the engine's "sent" marks). `carried`:
    per message, the trace its events continue, where it is not the one it came with (#19)."""
    with store.transaction() as tx:
        work = UnitOfWork(tx, wrap, ctx, now)
        work.read_for_messages(messages)
        if carried is None:
            results = [work.handle(message) for message in messages]
        else:
            pairs = zip(messages, carried, strict=True)
            results = [work.handle(message, trace) for message, trace in pairs]
        if join is not None:
            join(tx)
        work.write()
    return Committed(results, work.events)


def erase_closed(
    tx: port.Transaction,
    wrap: envelopes.Envelopes,
    registrations: Sequence[port.Stored],
    ctx: Context,
    now: dt.datetime,
) -> Committed:
    """R19 on time: closed registrations (locked by the caller) erased, in the caller's
    transaction."""
    work = UnitOfWork(tx, wrap, ctx, now)
    for stored in registrations:
        work._keep(port.key_tuple(stored.registration.key), stored)
    results = [work.erase(stored.id) for stored in registrations]
    work.write()
    return Committed(results, work.events)


def fire_timers(
    tx: port.Transaction,
    wrap: envelopes.Envelopes,
    claimed: port.Claimed,
    ctx: Context,
    now: dt.datetime,
    trace: TimerTrace | None = None,
) -> Committed:
    """Claimed timers, in due order, inside the caller's transaction (committed when it is)."""
    work = UnitOfWork(tx, wrap, ctx, now, trace)
    work.read_for_timers(claimed)
    results = [work.fire(due) for due in claimed.dues]
    work.write()
    return Committed(results, work.events)


NO_ACT = inbound.Act()


def _erased(slot: _Slot) -> bool:
    """R19: the core erased the registration's personal data in this transaction."""
    now, read = slot.current, slot.read
    return now is not None and read is not None and now.erased_on != read.erased_on


def _erasure(slot: _Slot) -> port.Erasure:
    assert slot.id is not None
    assert slot.read is not None
    assert slot.current is not None
    recipient = slot.read.recipient
    values = frozenset({recipient.email} if recipient else ())
    return port.Erasure(slot.id, port.key_tuple(slot.current.key), values)


@dataclass(frozen=True)
class _Cause:
    """What caused a history row: a message (with the bureau it names, the account that
    published it, and for an act of a person who acted, why and under which reference) or a
    timer."""

    id: str
    type: str
    bureau: str | None = None
    publisher: str | None = None
    act: inbound.Act = NO_ACT
    carried: Carried | None = None  # the trace its events continue (#19)

    @classmethod
    def of(cls, message: Accepted, carried: Carried | None) -> _Cause:
        bureau = getattr(message.data, "audit_bureau", None)
        return cls(
            message.id,
            message.type,
            bureau and normalise(bureau),
            message.publisher,
            inbound.act_of(message.data),
            carried,
        )


@dataclass
class _Slot:
    """One registration as the batch sees it: as read, and as it is now."""

    id: int | None = None
    version: int = 0
    read: Registration | None = None
    current: Registration | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[replay.Step] = field(default_factory=list)  # its life, in this batch (R17)
    carried: Carried | None = None  # the trace of the message that last changed it (#19)


class UnitOfWork:
    def __init__(
        self,
        tx: port.Transaction,
        wrap: envelopes.Envelopes,
        ctx: Context,
        now: dt.datetime,
        trace: TimerTrace | None = None,
    ) -> None:
        self.tx, self.wrap, self.ctx, self.now = tx, wrap, ctx, now
        self._trace = trace
        self._by_key: dict[port.KeyTuple, _Slot] = {}
        self._by_id: dict[int, _Slot] = {}
        self._seen: set[str] = set()
        self._keys: dict[str, Key] = {}
        self._numbers: dict[str, list[str | None]] = {}
        self._ids: list[int] = []
        self._outbox: list[Outgoing] = []
        self._archive: list[tuple[dict[str, Any], _Slot]] = []
        self._fired: list[int] = []
        self._fired_timers: set[tuple[int, schedule.Timer]] = set()
        self._keeps_steps = False  # a retraction in the batch reads what the batch decided

    # -- reading ----------------------------------------------------------------------------

    def read_for_messages(self, messages: Sequence[Accepted]) -> None:
        # Each message's key, once (a second delivery of an id is a duplicate: no key needed).
        self._keys = {m.id: lifecycle.key_of(m.data) for m in messages}
        keys = {port.key_tuple(key) for key in self._keys.values()}
        may_register: dict[str, set[port.KeyTuple]] = defaultdict(set)
        for message in messages:
            if lifecycle.needs_number(None, message.data):
                key = port.key_tuple(self._keys[message.id])
                may_register[key[3]].add(key)
        self._keeps_steps = any(isinstance(m.data, inbound.Retraction) for m in messages)
        read = self.tx.read_for_messages([m.id for m in messages], keys, may_register)
        self._seen, self._numbers, self._ids = read.seen, read.numbers, read.ids
        for key, stored in read.stored.items():
            self._keep(key, stored)

    def read_for_timers(self, claimed: port.Claimed) -> None:
        for stored in claimed.registrations.values():
            self._keep(port.key_tuple(stored.registration.key), stored)

    def _keep(self, key: port.KeyTuple, stored: port.Stored) -> None:
        slot = _Slot(stored.id, stored.version, stored.registration, stored.registration)
        self._by_key[key] = slot
        self._by_id[stored.id] = slot

    # -- deciding ---------------------------------------------------------------------------

    def handle(self, message: Accepted, carried: Carried | None = None) -> Result:
        if message.id in self._seen:
            return Result("duplicate", None, ())
        self._seen.add(message.id)
        key = self._keys[message.id]
        slot = self._by_key.setdefault(port.key_tuple(key), _Slot())
        number = None
        if lifecycle.needs_number(slot.current, message.data):
            number = self._numbers[key.service].pop(0)
            if number is None:
                raise port.NumbersExhaustedError(key.service)  # R21: the whole batch rolls back
        decided = Message(message.id, message.data, message.publisher)
        if isinstance(message.data, inbound.Retraction):  # R17: decided with the life
            outcome = lives.retract(self.tx, slot.id, slot.current, decided, self.ctx, slot.steps)
        else:
            outcome = lifecycle.decide(slot.current, decided, self.ctx, number)
        cause = _Cause.of(message, carried or message.carried)
        result = self._record(slot, outcome, cause, always=True)
        if self._keeps_steps and slot.current is not None:
            slot.steps.append(replay.Step(self.ctx.today, decided, result.events))
        # The archive row; its registration's id is known once the batch writes (a new one).
        row = {
            "message_id": message.id,
            "type": message.type,
            "handled_at": self.now,
            "outcome": result.outcome,
            "registration_id": None,
            "business_date": self.ctx.today,
            "routing_key": message.routing_key or message.type,
            "publisher": message.publisher,
            "reason": result.reason or None,
            "body": message.body,
        }
        self._archive.append((row, slot))
        return result

    def fire(self, due: port.DueTimer) -> Result:
        slot = self._by_id.get(due.registration_id)
        if slot is None or slot.current is None:
            # Its registration was not claimed with it: the timer stays due for the next sweep.
            return Result("busy", None, ())
        self._fired.append(due.id)
        self._fired_timers.add((due.registration_id, due.timer))
        outcome = lifecycle.fire(slot.current, due.timer, self.ctx)
        number = slot.current.number
        carried = self._trace(due, number) if self._trace is not None else None
        cause = _Cause(f"{number}:{due.timer.cause_id}", due.timer.kind, carried=carried)
        return self._record(slot, outcome, cause)

    def erase(self, registration_id: int) -> Result:
        slot = self._by_id[registration_id]
        assert slot.current is not None
        outcome = actions.erase(slot.current, self.ctx)
        cause = _Cause(f"{slot.current.number}:{lives.ERASED_ON_TIME}", lives.ERASED_ON_TIME)
        return self._record(slot, outcome, cause)

    def _record(
        self, slot: _Slot, outcome: Outcome, cause: _Cause, *, always: bool = False
    ) -> Result:
        self._outbox.extend(self.wrap.wrap(outcome.events, cause.id, self.now, cause.carried))
        types = tuple(TYPE_OF[type(event)] for event in outcome.events)
        ignored = any(isinstance(e, Ignored) for e in outcome.events)
        label, reason = ("ignored", outcome.note) if ignored else ("handled", "")
        before, after = slot.current, outcome.registration
        if after is None:
            return Result(label, None, types, outcome.rule, reason)
        if after != before or types or always:
            slot.history.append(
                {
                    "recorded_at": self.now,
                    "business_date": self.ctx.today,
                    "from_state": before.state.value if before else None,
                    "to_state": after.state.value,
                    "rule": outcome.rule,
                    "note": outcome.note,
                    "cause_id": cause.id,
                    "cause_type": cause.type,
                    "events": list(types),
                    "bureau": cause.bureau,
                    "publisher": cause.publisher,
                    "actor": cause.act.actor,
                    "reason": cause.act.reason,
                    "reference": cause.act.reference,
                }
            )
        if cause.carried is not None and after != before:
            slot.carried = cause.carried
        slot.current = after
        return Result(label, after.number, types, outcome.rule, reason)

    # -- writing ----------------------------------------------------------------------------

    @property
    def events(self) -> list[Outgoing]:
        return list(self._outbox)

    def write(self) -> None:
        slots = list({id(s): s for s in self._by_key.values()}.values())
        new = [s for s in slots if s.id is None and s.current is not None]
        changed = [s for s in slots if s.read is not None and s.current != s.read]
        writes = port.Writes(fired=self._fired, outbox=self._outbox)
        for slot in new:
            assert slot.current is not None
            slot.id = self._ids.pop()  # every new registration took a number, and an id with it
            writes.inserted.append((slot.id, slot.current))
        for row, slot in self._archive:
            row["registration_id"] = slot.id if slot.current is not None else None
            writes.inbox.append(row)
        writes.changed = [(s.id, s.version, s.current) for s in changed if s.id and s.current]
        writes.returned = {service: len(left) for service, left in self._numbers.items() if left}
        for slot in (*new, *changed):
            assert slot.id is not None
            assert slot.current is not None
            # Timers follow from the state: what the state as read had, less what it has now.
            had = schedule.timers_for(slot.read, self.ctx.offsets) if slot.read else frozenset()
            wants = schedule.timers_for(slot.current, self.ctx.offsets)
            # A timer fired in this batch stays as a record: nothing to cancel.
            writes.cancel += [
                (slot.id, x) for x in had - wants if (slot.id, x) not in self._fired_timers
            ]
            writes.add += [(slot.id, timer) for timer in wants - had]
        writes.history = [{**row, "registration_id": s.id} for s in slots for row in s.history]
        writes.erase = [_erasure(s) for s in changed if _erased(s)]
        writes.traced = {
            s.id: s.carried.traceparent for s in (*new, *changed) if s.id and s.carried
        }
        self.tx.write(writes, self.now)
