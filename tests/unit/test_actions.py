"""R14-R16: the acts of people on a case, one table row each, with concrete dates."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import Life
from worker import samples as s
from worker.contracts.outbound import DeadlineExtended, Ignored, Stopped, Withdrawn
from worker.domain import schedule
from worker.domain.model import NoticeOffsets

D = dt.date
KEY = s.key("1543301276")


def life_in(state: str) -> Life:
    """A registration brought into `state` through the rules themselves."""
    life = Life()
    life.send(s.request(KEY, starter=state == "admitted_temporarily"), D(2026, 3, 2))
    if state == "requested":
        return life
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    if state == "audit_failed":
        life.send(s.audit(KEY, D(2026, 3, 2), result="failed", report_id="AR-1"), D(2026, 3, 2))
    elif state in ("awaiting_approval", "registered_conditionally"):
        deadline = D(2026, 12, 1)
        life.send(
            s.audit(KEY, D(2026, 3, 2), result="conditional", follow_up_deadline=deadline),
            D(2026, 3, 2),
        )
        if state == "registered_conditionally":
            life.send(s.approval(KEY, D(2026, 3, 10)), D(2026, 3, 10))
    elif state == "admitted_temporarily":
        life.send(s.audit(KEY, D(2026, 3, 2), kind="limited"), D(2026, 3, 2))
    else:
        life.send(s.audit(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    assert life.state == state
    return life


# R14 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        "requested",
        "audit_failed",
        "awaiting_approval",
        "registered_conditionally",
        "admitted_temporarily",
        "registered",
    ],
)
def test_r14_a_live_request_or_registration_is_withdrawn_and_its_timers_go(state: str) -> None:
    life = life_in(state)
    (decision,) = life.send(s.withdrawal(KEY, reference="EL-1"), D(2026, 4, 1)).events
    assert isinstance(decision, Withdrawn) and decision.reference == "EL-1" and decision.notify
    assert life.state == "withdrawn"
    assert life.registration is not None
    assert schedule.timers_for(life.registration, NoticeOffsets()) == frozenset()
    assert life.advance(D(2032, 1, 1)) == []


def test_r14_a_withdrawn_key_starts_a_new_cycle_under_the_same_number() -> None:
    life = life_in("registered")
    number = life.registration.number if life.registration else None
    life.send(s.withdrawal(KEY), D(2026, 4, 1))
    life.send(s.request(KEY), D(2026, 5, 1))
    assert life.state == "requested"
    assert life.registration is not None
    assert (life.registration.number, life.registration.cycle) == (number, 2)


def test_r14_r11_a_withdrawal_after_the_end_changes_nothing() -> None:
    life = life_in("registered")
    life.send(s.withdrawal(KEY), D(2026, 4, 1))
    (event,) = life.send(s.withdrawal(KEY), D(2026, 4, 2)).events
    assert isinstance(event, Ignored) and event.reason == "registration_closed"


# R15 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state", ["registered", "registered_conditionally", "admitted_temporarily"]
)
def test_r15_vlaio_stops_a_registration_with_its_reference(state: str) -> None:
    life = life_in(state)
    outcome = life.send(s.stop_order(KEY, reference="VLAIO-1"), D(2026, 6, 1))
    (decision,) = outcome.events
    assert isinstance(decision, Stopped)
    assert (decision.reason, decision.reference) == ("stopped_by_vlaio", "VLAIO-1")
    assert outcome.rule == "R15"
    assert life.state == "stopped"
    assert life.advance(D(2032, 1, 1)) == []


@pytest.mark.parametrize("state", ["requested", "audit_failed", "awaiting_approval"])
def test_r15_a_request_in_the_procedure_is_not_a_registration_to_stop(state: str) -> None:
    life = life_in(state)
    before = life.registration
    (event,) = life.send(s.stop_order(KEY), D(2026, 6, 1)).events
    assert isinstance(event, Ignored) and event.reason == "not_registered"
    assert life.registration == before


# R16 ----------------------------------------------------------------------------------------


def test_r16_a_later_follow_up_deadline_moves_the_stop_and_its_notice() -> None:
    life = life_in("registered_conditionally")
    new = D(2027, 2, 28)
    (decision,) = life.send(
        s.deadline_extension(KEY, "follow_up", new, reference="VLAIO-2"), D(2026, 11, 20)
    ).events
    assert isinstance(decision, DeadlineExtended)
    assert (decision.deadline, decision.previous, decision.until) == (
        "follow_up",
        D(2026, 12, 1),
        new,
    )
    assert life.registration is not None and life.registration.follow_up_deadline == new
    # The old deadline no longer stops it; the new one does, after its notice 30 days before.
    assert life.advance(D(2026, 12, 31)) == []
    notices = life.advance(D(2027, 1, 29))
    assert [o.note for o in notices] == ["notice.follow_up_due"]
    life.advance(D(2027, 3, 1))
    assert life.state == "stopped"


def test_r16_a_follow_up_deadline_awaiting_the_minister_is_carried_into_the_registration() -> None:
    life = life_in("awaiting_approval")
    life.send(s.deadline_extension(KEY, "follow_up", D(2027, 3, 1)), D(2026, 4, 1))
    life.send(s.approval(KEY, D(2026, 4, 2)), D(2026, 4, 2))
    assert life.registration is not None
    assert life.registration.follow_up_deadline == D(2027, 3, 1)


def test_r16_a_later_reaction_deadline_lets_a_later_reaction_count() -> None:
    life = life_in("audit_failed")
    assert life.registration is not None and life.registration.reaction_deadline == D(2026, 9, 2)
    life.send(s.deadline_extension(KEY, "reaction", D(2026, 12, 2)), D(2026, 8, 1))
    assert life.advance(D(2026, 10, 1)) == []  # not refused on the old date
    life.send(s.reaction(KEY, "AR-1", D(2026, 11, 15)), D(2026, 11, 15))
    assert life.state == "awaiting_reaudit"


@pytest.mark.parametrize(
    ("state", "deadline", "until", "reason"),
    [
        ("registered_conditionally", "follow_up", D(2026, 12, 1), "extension_not_later"),
        ("registered_conditionally", "follow_up", D(2026, 11, 1), "extension_not_later"),
        ("registered_conditionally", "reaction", D(2027, 1, 1), "no_reaction_deadline"),
        ("registered", "follow_up", D(2027, 1, 1), "no_follow_up_deadline"),
        ("audit_failed", "follow_up", D(2027, 1, 1), "no_follow_up_deadline"),
        ("requested", "reaction", D(2027, 1, 1), "no_reaction_deadline"),
    ],
)
def test_r16_r11_an_earlier_date_or_a_deadline_not_held_changes_nothing(
    state: str, deadline: str, until: D, reason: str
) -> None:
    life = life_in(state)
    before = life.registration
    (event,) = life.send(s.deadline_extension(KEY, deadline, until), D(2026, 6, 1)).events
    assert isinstance(event, Ignored) and event.reason == reason
    assert life.registration == before
