"""A pure in-memory driver of the core, for the unit and property tests."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

from worker.contracts.inbound import INBOUND, Retraction
from worker.contracts.outbound import TYPE_OF, EventData
from worker.domain import lifecycle, replay, schedule
from worker.domain.model import Context, NoticeOffsets, Registration
from worker.domain.outcome import Message, Outcome
from worker.samples import APPOINTED_BUREAU, SECOND_BUREAU

BUREAUS = frozenset({APPOINTED_BUREAU, SECOND_BUREAU})


def message(document: dict[str, Any], publisher: str | None = None) -> Message:
    data = INBOUND[document["type"]].model_validate(document["data"])
    return Message(document["id"], data, publisher)


BACK_OFFICE = "back-office"
START = dt.date(2026, 1, 1)  # a replay takes each step's own date; this one is never used


def ctx(today: dt.date, offsets: NoticeOffsets | None = None) -> Context:
    return Context(
        today=today,
        audit_bureaus=BUREAUS,
        offsets=offsets or NoticeOffsets(),
        back_office=frozenset({BACK_OFFICE}),
    )


def types(events: tuple[EventData, ...]) -> list[str]:
    return [TYPE_OF[type(event)] for event in events]


@dataclass
class Life:
    """One registration driven through the core: messages and the passing of days."""

    offsets: NoticeOffsets = field(default_factory=NoticeOffsets)
    registration: Registration | None = None
    events: list[EventData] = field(default_factory=list)
    caused: list[tuple[str, tuple[EventData, ...]]] = field(default_factory=list)
    fired: set[schedule.Timer] = field(default_factory=set)
    steps: list[replay.Step] = field(default_factory=list)  # the life, as the archive keeps it
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def send(
        self, document: dict[str, Any], today: dt.date, publisher: str | None = None
    ) -> Outcome:
        msg = message(document, publisher)
        day = ctx(today, self.offsets)
        if isinstance(msg.data, Retraction):
            outcome = replay.retract(self.registration, self.steps, msg, day)
        else:
            number = None
            if lifecycle.needs_number(self.registration, msg.data):
                number = f"DV.O{next(self._numbers):06d}"
            outcome = lifecycle.decide(self.registration, msg, day, number)
        self._take(outcome, msg.id)
        self._record(today, msg, outcome)
        return outcome

    def _record(self, today: dt.date, cause: Message | schedule.Timer, outcome: Outcome) -> None:
        if self.registration is not None:  # the archive holds what is about a registration
            self.steps.append(replay.Step(today, cause, tuple(types(outcome.events))))

    def replayed(self, without: frozenset[str] = frozenset()) -> Registration | None:
        """The life decided again from its steps (R17)."""
        if self.registration is None:
            return None
        number = self.registration.number
        return replay.replay(
            self.steps, ctx(START, self.offsets), number, without=without
        ).registration

    def advance(self, today: dt.date) -> list[Outcome]:
        """Fire every timer due by `today`, in due order, as the sweep does."""
        outcomes = []
        while self.registration is not None:
            due = sorted(
                t
                for t in schedule.timers_for(self.registration, self.offsets)
                if t.due <= today and t not in self.fired
            )
            if not due:
                break
            self.fired.add(due[0])
            cause = f"{self.registration.number}:{due[0].cause_id}"
            outcome = lifecycle.fire(self.registration, due[0], ctx(today, self.offsets))
            self._take(outcome, cause)
            self._record(today, due[0], outcome)
            outcomes.append(outcome)
        return outcomes

    def _take(self, outcome: Outcome, cause: str) -> None:
        if outcome.registration is not None:
            self.registration = outcome.registration
        self.events.extend(outcome.events)
        self.caused.append((cause, outcome.events))

    def published(self, now: dt.datetime) -> list[tuple[str, str, str]]:
        """(id, type, body) of every event, as the shell would store them."""
        from worker.service import envelopes

        return [
            wrapped
            for cause, events in self.caused
            for wrapped in envelopes.wrap(events, cause, "urn:test", now)
        ]

    @property
    def state(self) -> str | None:
        return self.registration.state.value if self.registration else None

    def types(self) -> list[str]:
        return [TYPE_OF[type(event)] for event in self.events]
