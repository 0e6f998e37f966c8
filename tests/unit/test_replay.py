"""R17: a message retracted, the registration replayed without it; replay itself (pure core)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import BACK_OFFICE, Life, ctx, message, types
from worker import samples as s
from worker.contracts.envelope import event_id
from worker.contracts.outbound import Corrected, Ignored
from worker.domain import replay, schedule
from worker.domain.model import NoticeOffsets

D = dt.date
KEY = s.key("1543301276")
OTHER = s.key("0417497106")
BUREAU = "bureau-account"


def failed_three_weeks_ago() -> tuple[Life, dict[str, object]]:
    life = Life()
    life.send(s.request(KEY), D(2026, 3, 2))
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    report = s.audit(KEY, D(2026, 3, 10), result="failed", report_id="AR-1")
    life.send(report, D(2026, 3, 12), publisher=BUREAU)
    assert life.state == "audit_failed"
    return life, report


def ignored_reason(outcome: replay.Outcome) -> str:
    (notice,) = outcome.events
    assert isinstance(notice, Ignored)
    return notice.reason


def test_r17_a_failed_audit_retracted_leaves_the_request_where_a_passed_audit_registers_it() -> (
    None
):
    life, report = failed_three_weeks_ago()
    failed_at = life.registration
    assert failed_at is not None and failed_at.reaction_deadline is not None
    retraction = s.retraction(KEY, str(report["id"]))
    outcome = life.send(retraction, D(2026, 4, 2), publisher=BACK_OFFICE)

    assert outcome.rule == "R17"
    (corrected,) = outcome.events
    assert isinstance(corrected, Corrected)
    assert (corrected.previous_state, corrected.state) == ("audit_failed", "requested")
    assert corrected.reaction_deadline is None and corrected.notify
    # The decision the mailers got on the strength of the report no longer holds.
    assert corrected.superseded == [event_id(str(report["id"]), 0, "decision.audit_failed")]
    after = life.registration
    assert after is not None
    assert after.reaction_deadline is None and after.failed_report_id is None
    assert after.declaration_on == D(2026, 3, 2)  # the declaration still counts
    assert schedule.timers_for(after, NoticeOffsets()) == frozenset()  # no reaction deadline

    life.send(s.audit(KEY, D(2026, 4, 20), report_id="AR-2"), D(2026, 4, 21), publisher=BUREAU)
    assert life.state == "registered"


def test_r17_the_original_publisher_may_retract_its_own_message() -> None:
    life, report = failed_three_weeks_ago()
    outcome = life.send(s.retraction(KEY, str(report["id"])), D(2026, 4, 2), publisher=BUREAU)
    assert outcome.rule == "R17" and life.state == "requested"


def test_r17_anyone_else_is_an_unauthorized_publisher() -> None:
    life, report = failed_three_weeks_ago()
    before = life.registration
    outcome = life.send(s.retraction(KEY, str(report["id"])), D(2026, 4, 2), publisher="desk")
    assert ignored_reason(outcome) == "unauthorized_publisher"
    assert life.registration == before


@pytest.mark.parametrize(
    ("target", "elsewhere", "reason"),
    [
        ("no-such-message", False, "unknown_message"),
        ("no-such-message", True, "other_registration"),
        ("request", False, "not_retractable"),
    ],
)
def test_r17_bad_retractions_change_nothing(target: str, elsewhere: bool, reason: str) -> None:
    life = Life()
    request = s.request(KEY)
    life.send(request, D(2026, 3, 2))
    before = life.registration
    named = str(request["id"]) if target == "request" else target
    retraction = message(s.retraction(KEY, named), BACK_OFFICE)
    outcome = replay.retract(
        before, life.steps, retraction, ctx(D(2026, 4, 1)), elsewhere=elsewhere
    )
    assert ignored_reason(outcome) == reason
    assert outcome.registration == before


def test_r17_a_retraction_cannot_itself_be_retracted_nor_a_message_retracted_twice() -> None:
    life, report = failed_three_weeks_ago()
    first = s.retraction(KEY, str(report["id"]))
    life.send(first, D(2026, 4, 2), publisher=BACK_OFFICE)
    twice = life.send(s.retraction(KEY, str(report["id"])), D(2026, 4, 3), publisher=BACK_OFFICE)
    assert ignored_reason(twice) == "already_retracted"
    undo = life.send(s.retraction(KEY, str(first["id"])), D(2026, 4, 4), publisher=BACK_OFFICE)
    assert ignored_reason(undo) == "not_retractable"
    assert life.state == "requested"


def test_r17_a_retraction_of_a_message_that_changed_nothing_changes_only_the_history() -> None:
    life, _ = failed_three_weeks_ago()
    stray = s.approval(KEY, D(2026, 3, 20))  # not awaited: ignored
    life.send(stray, D(2026, 3, 20), publisher=BACK_OFFICE)
    before = life.registration
    outcome = life.send(s.retraction(KEY, str(stray["id"])), D(2026, 4, 2), publisher=BACK_OFFICE)
    assert (outcome.rule, outcome.events, outcome.registration) == ("R17", (), before)


def test_r17_a_refusal_that_followed_from_the_retracted_report_is_undone() -> None:
    """Interpretation: a closing the procedure took itself reopens when its cause is gone."""
    life, report = failed_three_weeks_ago()
    assert life.registration is not None
    deadline = life.registration.reaction_deadline
    life.advance(D(2026, 9, 30))  # no reaction within six months: refused (R6)
    assert life.state == "refused"
    outcome = life.send(s.retraction(KEY, str(report["id"])), D(2026, 10, 5), publisher=BUREAU)
    (corrected,) = outcome.events
    assert isinstance(corrected, Corrected)
    assert (corrected.previous_state, corrected.state) == ("refused", "requested")
    refused_by = f"DV.O000001:timer:deadline.reaction:{deadline}:0"
    assert event_id(refused_by, 0, "decision.refused") in corrected.superseded


def test_r17_a_registration_a_person_closed_stays_closed_unless_the_act_is_retracted() -> None:
    life = Life()
    life.send(s.request(KEY), D(2026, 3, 2))
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    report = s.audit(KEY, D(2026, 3, 10), report_id="AR-1")
    life.send(report, D(2026, 3, 12), publisher=BUREAU)
    stop = s.stop_order(KEY)
    life.send(stop, D(2026, 5, 1), publisher=BACK_OFFICE)
    assert life.state == "stopped"
    # Without the report there is no registration to stop: that would reopen VLAIO's decision.
    refused = life.send(s.retraction(KEY, str(report["id"])), D(2026, 5, 2), publisher=BUREAU)
    assert ignored_reason(refused) == "closed_by_act"
    undone = life.send(s.retraction(KEY, str(stop["id"])), D(2026, 5, 3), publisher=BACK_OFFICE)
    assert undone.rule == "R17" and life.state == "registered"


def test_r17_a_message_of_an_earlier_cycle_is_not_retracted() -> None:
    life, report = failed_three_weeks_ago()
    life.advance(D(2026, 9, 30))
    life.send(s.request(KEY), D(2026, 10, 1))  # a new cycle
    assert life.registration is not None and life.registration.cycle == 2
    outcome = life.send(s.retraction(KEY, str(report["id"])), D(2026, 10, 5), publisher=BUREAU)
    assert ignored_reason(outcome) == "earlier_cycle"


def test_r17_later_messages_are_decided_again_against_the_corrected_life() -> None:
    """A conditional report booked on the wrong case, approved, then retracted: the approval
    no longer has anything to approve, and its decision is superseded."""
    life = Life()
    life.send(s.request(KEY), D(2026, 3, 2))
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    conditional = s.audit(
        KEY, D(2026, 3, 10), result="conditional", follow_up_deadline=D(2026, 12, 1)
    )
    life.send(conditional, D(2026, 3, 12), publisher=BUREAU)
    approval = s.approval(KEY, D(2026, 3, 20))
    life.send(approval, D(2026, 3, 20), publisher=BACK_OFFICE)
    assert life.state == "registered_conditionally"
    outcome = life.send(s.retraction(KEY, str(conditional["id"])), D(2026, 4, 1), BUREAU)
    (corrected,) = outcome.events
    assert isinstance(corrected, Corrected)
    assert corrected.state == "requested" and corrected.period is None
    # The conditional report itself published nothing (it waits for the minister).
    assert corrected.superseded == [
        event_id(str(approval["id"]), 0, "decision.registered_conditionally")
    ]


def test_replay_of_a_life_gives_its_state_and_its_events() -> None:
    life, _ = failed_three_weeks_ago()
    life.send(s.reaction(KEY, "AR-1", D(2026, 4, 1)), D(2026, 4, 1), publisher=BUREAU)
    life.send(s.audit(KEY, D(2026, 5, 1), report_id="AR-2"), D(2026, 5, 2), publisher=BUREAU)
    life.advance(D(2031, 6, 1))
    assert life.state == "expired"
    again = replay.replay(life.steps, ctx(D(2020, 1, 1)), "DV.O000001")
    assert again.registration == life.registration
    assert [types(d.outcome.events) for d in again.decided] == [
        list(step.events or ()) for step in life.steps
    ]


def test_replay_with_other_notice_offsets_shows_the_notices_that_would_not_go() -> None:
    life = Life()
    life.send(s.request(KEY), D(2026, 3, 2))
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    life.send(s.audit(KEY, D(2026, 3, 10)), D(2026, 3, 12), publisher=BUREAU)
    life.advance(D(2031, 2, 15))  # 90 and 30 days before the end: two notices
    assert life.types().count("notice.expiring") == 2
    fewer = replay.replay(
        life.steps, ctx(D(2020, 1, 1), NoticeOffsets(expiring=(60,))), "DV.O000001"
    )
    sent = [t for d in fewer.decided for t in types(d.outcome.events)]
    assert sent.count("notice.expiring") == 0  # the old offsets' timers are stale
    assert fewer.registration == life.registration
