"""`replay --what-if` (R17, R18): archived lives decided again through the code and settings as
they are now, compared with what was decided: the state and its dates, the events of each step,
and the pending timers. Read only: it is the check to run before a change of rules or settings
ships."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.adapters.store import port
from worker.domain import replay, schedule
from worker.domain.model import Context
from worker.service import lives
from worker.service.cases import summary

BATCH = 1_000  # registrations read at a time
COMPARED = (
    *("state", "since", "cycle", "bureau", "period"),
    *("follow_up_deadline", "reaction_deadline", "declaration_on"),
)


@dataclass
class Verdict:
    """One registration: what would differ if its life were decided today."""

    registration_number: str
    replayable: bool = True
    erased: bool = False  # its personal data was erased (R19): not replayable, as it should be
    fields: dict[str, list[Any]] = field(default_factory=dict)  # name: [decided, now]
    events: list[dict[str, Any]] = field(default_factory=list)  # steps whose events differ
    timers: dict[str, list[str]] = field(default_factory=dict)  # cancelled / added

    @property
    def differs(self) -> bool:
        if self.erased:
            return False
        return not self.replayable or bool(self.fields or self.events or self.timers)


@dataclass
class Totals:
    registrations: int = 0
    same: int = 0
    fields: int = 0  # registrations whose state or dates would differ
    events: int = 0
    timers: int = 0
    unreplayable: int = 0
    erased: int = 0

    def __iadd__(self, other: Totals) -> Totals:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)
        return self

    def count(self, verdict: Verdict) -> None:
        self.registrations += 1
        self.same += not verdict.differs and not verdict.erased
        self.fields += bool(verdict.fields)
        self.events += bool(verdict.events)
        self.timers += bool(verdict.timers)
        self.unreplayable += not verdict.replayable and not verdict.erased
        self.erased += verdict.erased


def verdicts(
    store: port.Store,
    ctx: Context,
    *,
    states: Sequence[str] = (),
    number: str | None = None,
    batch: int = BATCH,
    after: int = 0,
    up_to: int | None = None,
) -> Iterator[list[Verdict]]:
    """A batch of verdicts at a time, in id order, for the ids above `after` up to `up_to`."""
    while found := store.lives(after, batch, states=states, number=number, up_to=up_to):
        yield [judge(life, ctx) for life in found]
        after = found[-1].stored.id


def judge(life: port.Life, ctx: Context) -> Verdict:
    decided = life.stored.registration
    verdict = Verdict(decided.number)
    try:
        steps = lives.steps(life.lived)
    except lives.LifeErasedError:
        verdict.replayable, verdict.erased = False, True
        return verdict
    except lives.ArchiveIncompleteError:
        verdict.replayable = False
        return verdict
    again = replay.replay(steps, ctx, decided.number)
    now = again.registration or decided
    if now != decided:
        was, will = summary(decided), summary(now)
        verdict.fields = {n: [was[n], will[n]] for n in COMPARED if was[n] != will[n]}
    for step, outcome in again.decided:
        recorded, replayed = list(step.events or ()), list(replay.types(outcome))
        if recorded != replayed:
            verdict.events.append(_step(step, recorded, replayed))
    if now.is_live:
        cancel, add = schedule.rescheduled(now, life.timers, ctx.offsets, ctx.today)
        if cancel or add:
            verdict.timers = {"cancelled": _timers(cancel), "added": _timers(add)}
    return verdict


def _step(step: replay.Step, recorded: list[str], replayed: list[str]) -> dict[str, Any]:
    cause = step.cause
    named = f"timer {cause.kind}" if isinstance(cause, schedule.Timer) else cause.id
    return {"on": step.on.isoformat(), "cause": named, "decided": recorded, "now": replayed}


def _timers(timers: list[schedule.Timer]) -> list[str]:
    return [f"{x.kind} due {x.due} ({x.offset_days} d before {x.deadline})" for x in timers]
