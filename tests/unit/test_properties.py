"""Random lives of a registration: messages and days in any order (hypothesis, stateful).

Invariants after every step: nothing crashes; every (state, message) pair has an outcome (the
registration changes or an event says why not); every event validates against schemas/; a period
never ends before it starts; an extension adds exactly three years; a terminal state changes only
through a new request or a correction (R17). At the end the same sequence is replayed and must give
the same events with the same ids.

Replay (R17): the state stored is always what a replay of the steps says; and after a message m is
retracted, the state is that of a life in which m was never sent (the same other messages and
timers, on the same days).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import hypothesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support import BACK_OFFICE, Life
from worker import samples as s
from worker.contracts.outbound import DeadlineExtended, Extended
from worker.contracts.schemas import Validators
from worker.domain import dates
from worker.domain.model import TERMINAL
from worker.domain.outcome import Outcome
from worker.service import envelopes

VALIDATORS = Validators()
KEY = s.key("1543301276")
START = dt.date(2026, 1, 1)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EXAMPLES = int(os.environ.get("KMO_HYPOTHESIS_EXAMPLES", "500"))

days = st.integers(min_value=0, max_value=400)
results = st.sampled_from(["passed", "conditional", "failed"])
kinds = st.sampled_from(["full", "limited", "follow_up"])


class RegistrationLives(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.life = Life()
        self.today = START
        self.steps: list[tuple[str, Any]] = []
        self.causes: list[str] = []
        self.reports: list[str] = []
        self.sent: list[str] = []  # message ids, for retractions to name
        self.retracted: set[str] = set()

    # the world -------------------------------------------------------------------------------

    def _send(self, document: dict[str, Any], publisher: str | None = None) -> Outcome:
        before = self.life.registration
        outcome = self.life.send(document, self.today, publisher)
        self.steps.append(("send", (document, self.today, publisher)))
        self.causes.append(document["id"])
        self.sent.append(document["id"])
        reopens = document["type"] in ("registration.requested", "message.retracted")
        self._check(before, outcome, by_request=reopens)
        # R11: every (state, message) pair has an outcome: a change, or an event saying why not;
        # a retraction of a message that changed nothing changes only the history (R17).
        assert outcome.events or outcome.registration != before or outcome.rule == "R17"
        return outcome

    @rule(starter=st.booleans(), valid=st.booleans())
    def request(self, starter: bool, valid: bool) -> None:
        iban = s.SAMPLE_IBAN if valid else "BE68539007547035"
        self._send(s.request(KEY, starter=starter, iban=iban))

    @rule(back=st.integers(min_value=0, max_value=30))
    def declaration(self, back: int) -> None:
        self._send(s.declaration(KEY, self.today - dt.timedelta(days=back)))

    @rule(kind=kinds, result=results, back=st.integers(0, 20), ahead=days, again=st.booleans())
    def audit(self, kind: str, result: str, back: int, ahead: int, again: bool) -> None:
        report_id = self.reports[-1] if again and self.reports else f"AR-{len(self.reports)}"
        self.reports.append(report_id)
        extra = (
            {"follow_up_deadline": self.today + dt.timedelta(days=ahead)}
            if result == "conditional"
            else {}
        )
        day = self.today - dt.timedelta(days=back)
        self._send(s.audit(KEY, day, kind=kind, result=result, report_id=report_id, **extra))  # type: ignore[arg-type]

    @rule(back=st.integers(0, 5))
    def follow_up_not_performed(self, back: int) -> None:
        self._send(
            s.audit(
                KEY, self.today - dt.timedelta(days=back), kind="follow_up", result="not_performed"
            )
        )

    @precondition(lambda self: self.reports)
    @rule(late=st.booleans())
    def reaction(self, late: bool) -> None:
        received = self.today + dt.timedelta(days=200 if late else 0)
        self._send(s.reaction(KEY, self.reports[-1], received))

    @rule(back=st.integers(0, 10))
    def approval(self, back: int) -> None:
        self._send(s.approval(KEY, self.today - dt.timedelta(days=back)))

    @rule()
    def withdrawal(self) -> None:
        self._send(s.withdrawal(KEY))

    @rule()
    def stop_order(self) -> None:
        self._send(s.stop_order(KEY))

    @rule(deadline=st.sampled_from(["follow_up", "reaction"]), ahead=st.integers(-30, 200))
    def extension(self, deadline: str, ahead: int) -> None:
        self._send(s.deadline_extension(KEY, deadline, self.today + dt.timedelta(days=ahead)))

    @precondition(lambda self: self.sent)
    @rule(pick=st.integers(0, 10_000), by=st.sampled_from([None, BACK_OFFICE, "someone-else"]))
    def retraction(self, pick: int, by: str | None) -> None:
        target = self.sent[pick % len(self.sent)]
        outcome = self._send(s.retraction(KEY, target), by)
        hypothesis.event(
            "retraction: " + ("took effect" if outcome.rule == "R17" else outcome.note)
        )
        if outcome.rule == "R17":
            self.retracted.add(target)
            # A life in which the retracted messages were never sent ends where this one is.
            assert self.life.replayed(frozenset(self.retracted)) == self.life.registration

    @rule(n=st.sampled_from([1, 29, 30, 31, 89, 90, 91, 180, 365, 730, 1826]))
    def days_pass(self, n: int) -> None:
        self.today += dt.timedelta(days=n)
        before = self.life.registration
        outcomes = self.life.advance(self.today)
        self.steps.append(("advance", self.today))
        for outcome in outcomes:
            self.causes.append(f"timer:{len(self.causes)}")
            self._check(before, outcome, by_request=False)
            before = outcome.registration

    # the checks ------------------------------------------------------------------------------

    def _check(self, before: Any, outcome: Outcome, *, by_request: bool) -> None:
        after = outcome.registration
        if before is not None and before.state in TERMINAL and not by_request:
            assert after is not None and after.state == before.state, "a terminal state moved"
        for _id, type_name, body, _trace in envelopes.wrap(
            outcome.events, "cause", "urn:test", NOW
        ):
            violation = VALIDATORS.first_violation(type_name, json.loads(body))
            assert violation is None, f"{type_name}: {violation}"
        for event in outcome.events:
            if isinstance(event, DeadlineExtended):
                assert event.until > event.previous, "a deadline moved to an earlier date"
            if isinstance(event, Extended):
                assert before is not None and before.period is not None
                assert event.period.end == dates.add_years(before.period.end, 3)
                assert event.period.start == before.period.start

    @invariant()
    def the_stored_state_is_what_replay_says(self) -> None:
        assert self.life.replayed() == self.life.registration

    @invariant()
    def period_never_ends_before_it_starts(self) -> None:
        registration = self.life.registration
        if registration is not None and registration.period is not None:
            assert registration.period.end >= registration.period.start

    def teardown(self) -> None:
        """Replaying the same sequence gives the same events, and so the same event ids."""
        replay = Life()
        for kind, argument in self.steps:
            if kind == "send":
                document, today, publisher = argument
                replay.send(document, today, publisher)
            else:
                replay.advance(argument)
        assert replay.published(NOW) == self.life.published(NOW)
        ids = [event.id for event in self.life.published(NOW)]
        assert len(ids) == len(set(ids)), "two events share an id"


TestRegistrationLives = RegistrationLives.TestCase
TestRegistrationLives.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
