"""Replay (R17): a registration's life decided again through the rules as they are now.

A life is the messages archived about a registration and the timers that fired for it, each on
the business date it was decided on, in the order it was decided. `replay` runs one; `retract`
is the rule of `message.retracted`: the life run again without the retracted message, and the
difference applied as one correction. Pure, like the rest of the core: the life and the dates
come in, nothing is read or written here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from worker.contracts.envelope import event_id
from worker.contracts.inbound import RegistrationRequested, Retraction
from worker.contracts.outbound import TYPE_OF, Corrected
from worker.domain import lifecycle
from worker.domain.model import TERMINAL, Context, Registration
from worker.domain.outcome import Message, Outcome, event, ignored
from worker.domain.schedule import Timer

# R17, interpretation: a closing by a person's act is undone only by retracting that act.
CLOSING_ACTS = frozenset({"withdrawal", "stop_order"})
# What the mailers act on; `message.ignored` goes to operations and is not superseded.
SUPERSEDABLE = ("decision.", "notice.")


class Step(NamedTuple):
    """One thing that happened to a registration: a message, or a timer that fired."""

    on: dt.date  # the business date it was decided on
    cause: Message | Timer
    events: tuple[str, ...] | None = None  # the types it published, as recorded (None: unknown)


class Decided(NamedTuple):
    step: Step
    outcome: Outcome


@dataclass(frozen=True)
class Replayed:
    registration: Registration | None
    decided: tuple[Decided, ...]
    retracted: frozenset[str]  # the messages a retraction took back


def replay(
    life: Iterable[Step], ctx: Context, number: str, *, without: frozenset[str] = frozenset()
) -> Replayed:
    """`life` decided again in order, each step on its own business date, `number` the
    registration's; a retraction takes effect where it did. `without`: messages never sent."""
    run = _Run(ctx, number, without)
    for step in life:
        run.take(step)
    return run.replayed()


def retract(
    registration: Registration | None,
    life: Sequence[Step],
    message: Message,
    ctx: Context,
    *,
    elsewhere: bool = False,
) -> Outcome:
    """R17 for the stored `registration` with its `life`; `elsewhere`: the retracted id is
    archived for another registration."""
    run = _Run(ctx, registration.number if registration else "")
    for step in life:
        run.take(step)
    run.current = registration  # the state the mailers know is the one corrected
    return run.retraction(message, ctx, elsewhere)


@functools.lru_cache(maxsize=4096)
def on(ctx: Context, today: dt.date) -> Context:
    """The context on a step's business date: lives share their dates (a cohort's), and a
    context is a dataclass that takes microseconds to copy."""
    return dataclasses.replace(ctx, today=today)


def cause_id(step: Step, number: str) -> str:
    """What the events of a step name as their cause (contract.md: deterministic ids)."""
    cause = step.cause
    return f"{number}:{cause.cause_id}" if isinstance(cause, Timer) else cause.id


def published(decided: Iterable[Decided], number: str, *, recorded: bool) -> list[tuple[str, str]]:
    """(id, type) of the events of decided steps; as recorded where `recorded` and known."""
    pairs = []
    for step, outcome in decided:
        names = step.events if recorded and step.events is not None else types(outcome)
        cause = cause_id(step, number)
        pairs += [(event_id(cause, i, name), name) for i, name in enumerate(names)]
    return pairs


def types(outcome: Outcome) -> tuple[str, ...]:
    return tuple(TYPE_OF[type(e)] for e in outcome.events)


@dataclass
class _Run:
    ctx: Context
    number: str
    excluded: frozenset[str] = frozenset()  # messages never sent, in this run
    corrects: bool = True  # False: a run that already leaves out every retracted message
    current: Registration | None = None
    decided: list[Decided] = field(default_factory=list)
    retracted: set[str] = field(default_factory=set)
    messages: dict[str, tuple[Message, int]] = field(default_factory=dict)  # id: (it, cycle)
    closing: Message | Timer | None = None  # what brought the registration to its end

    def take(self, step: Step) -> None:
        cause, day = step.cause, on(self.ctx, step.on)
        if isinstance(cause, Timer):
            if self.current is None:
                return
            outcome = lifecycle.fire(self.current, cause, day)
        elif cause.id in self.excluded:
            return
        elif isinstance(cause.data, Retraction):
            outcome = self.retraction(cause, day) if self.corrects else self._unchanged()
        else:
            number = self.number if lifecycle.needs_number(self.current, cause.data) else None
            outcome = lifecycle.decide(self.current, cause, day, number)
        self._keep(step, outcome)

    def _keep(self, step: Step, outcome: Outcome) -> None:
        self.decided.append(Decided(step, outcome))
        before, after = self.current, outcome.registration
        if after is not None:
            if after.state in TERMINAL and (before is None or before.state != after.state):
                self.closing = step.cause
            self.current = after
        if isinstance(step.cause, Message):
            cycle = self.current.cycle if self.current else 0
            self.messages[step.cause.id] = (step.cause, cycle)

    def _unchanged(self) -> Outcome:
        return Outcome(self.current, (), "R17", "taken back before")

    def retraction(self, message: Message, ctx: Context, elsewhere: bool = False) -> Outcome:
        data = message.data
        assert isinstance(data, Retraction)
        key = lifecycle.key_of(data)
        current = self.current
        if current is None:
            return ignored(None, key, message, "unknown_registration")
        refusal = self._refusal(message, data.retracted_id, ctx, elsewhere)
        if refusal is None:
            excluded = frozenset({*self.retracted, data.retracted_id})
            again = _Run(self.ctx, self.number, excluded, corrects=False)
            for step, _ in self.decided:
                again.take(step)
            refusal = self._reopens_an_act(again, data.retracted_id)
            if refusal is None:
                return self._correction(message, again)
        return ignored(current, key, message, refusal)

    def _refusal(self, message: Message, target: str, ctx: Context, elsewhere: bool) -> str | None:
        """Why a retraction changes nothing (R11), before the life is run again."""
        assert self.current is not None
        found = self.messages.get(target)
        if found is None:
            return "other_registration" if elsewhere else "unknown_message"
        original, cycle = found
        if isinstance(original.data, RegistrationRequested | Retraction):
            return "not_retractable"
        if target in self.retracted:
            return "already_retracted"
        if message.publisher != original.publisher and message.publisher not in ctx.back_office:
            return "unauthorized_publisher"
        if cycle != self.current.cycle:
            return "earlier_cycle"
        return None

    def _reopens_an_act(self, again: _Run, target: str) -> str | None:
        """R17, interpretation: a registration a person closed (R14, R15) stays closed unless that
        act itself is retracted."""
        assert self.current is not None
        closing = self.closing
        if self.current.state not in TERMINAL or not isinstance(closing, Message):
            return None
        if lifecycle.trigger(closing.data) not in CLOSING_ACTS or closing.id == target:
            return None
        reached = again.current.state if again.current else None
        return "closed_by_act" if reached != self.current.state else None

    def _correction(self, message: Message, again: _Run) -> Outcome:
        data = message.data
        assert isinstance(data, Retraction)
        before, after = self.current, again.current
        assert before is not None
        assert after is not None  # a request is never retracted
        self.retracted.add(data.retracted_id)
        if after == before:
            return Outcome(before, (), "R17", f"retracted {data.retracted_id}: no change")
        kept = {i for i, _ in published(again.decided, self.number, recorded=False)}
        superseded = [
            i
            for i, name in published(self.decided, self.number, recorded=True)
            if i not in kept and name.startswith(SUPERSEDABLE)
        ]
        corrected = event(
            Corrected,
            after,
            retracted_id=data.retracted_id,
            previous_state=before.state,
            period=after.period,
            follow_up_deadline=after.follow_up_deadline,
            reaction_deadline=after.reaction_deadline,
            superseded=superseded,
        )
        note = f"retracted {data.retracted_id}: {before.state} -> {after.state}"
        return Outcome(after, (corrected,), "R17", note)

    def replayed(self) -> Replayed:
        return Replayed(self.current, tuple(self.decided), frozenset(self.retracted))
