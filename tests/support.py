"""A pure in-memory driver of the core, for the unit and property tests."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

from worker.contracts.inbound import INBOUND
from worker.contracts.outbound import TYPE_OF, EventData
from worker.domain import lifecycle, schedule
from worker.domain.model import Context, NoticeOffsets, Registration
from worker.domain.outcome import Message, Outcome
from worker.samples import APPOINTED_BUREAU, SECOND_BUREAU

BUREAUS = frozenset({APPOINTED_BUREAU, SECOND_BUREAU})


def message(document: dict[str, Any]) -> Message:
    return Message(document["id"], INBOUND[document["type"]].model_validate(document["data"]))


def ctx(today: dt.date, offsets: NoticeOffsets | None = None) -> Context:
    return Context(today=today, audit_bureaus=BUREAUS, offsets=offsets or NoticeOffsets())


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
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def send(self, document: dict[str, Any], today: dt.date) -> Outcome:
        msg = message(document)
        number = None
        if lifecycle.needs_number(self.registration, msg.data):
            number = f"DV.O{next(self._numbers):06d}"
        outcome = lifecycle.decide(self.registration, msg, ctx(today, self.offsets), number)
        self._take(outcome, msg.id)
        return outcome

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
