"""R13: a reaction counts only from the bureau of the failed report; a re-audit and a follow-up
only from the bureau of record, until the back office moves the case to another bureau."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import Life
from worker import samples as s
from worker.contracts.outbound import Ignored

D = dt.date
KEY = s.key("1543301276")
A, B = s.APPOINTED_BUREAU, s.SECOND_BUREAU
DAY = D(2026, 3, 2)


def _reasons(outcome: object) -> list[str]:
    return [e.reason for e in outcome.events if isinstance(e, Ignored)]  # type: ignore[attr-defined]


def failed() -> Life:
    """Bureau A reported a failed audit, report AR-1."""
    life = Life()
    life.send(s.request(KEY), DAY)
    life.send(s.declaration(KEY, DAY), DAY)
    life.send(s.audit(KEY, DAY, result="failed", report_id="AR-1", bureau=A), DAY)
    return life


def awaiting_reaudit() -> Life:
    life = failed()
    life.send(s.reaction(KEY, "AR-1", DAY, bureau=A), DAY)
    return life


def conditional() -> Life:
    life = Life()
    life.send(s.request(KEY), DAY)
    life.send(s.declaration(KEY, DAY), DAY)
    deadline = D(2026, 9, 1)
    life.send(s.audit(KEY, DAY, result="conditional", follow_up_deadline=deadline, bureau=A), DAY)
    life.send(s.approval(KEY, DAY), DAY)
    return life


def starter() -> Life:
    life = Life()
    life.send(s.request(KEY, starter=True), DAY)
    life.send(s.declaration(KEY, DAY), DAY)
    life.send(s.audit(KEY, DAY, kind="limited", bureau=A), DAY)
    return life


def _reaction(bureau: str) -> dict[str, object]:
    return s.reaction(KEY, "AR-1", DAY, bureau=bureau)


def _reaudit(bureau: str) -> dict[str, object]:
    return s.audit(KEY, DAY, bureau=bureau)


def _follow_up(bureau: str) -> dict[str, object]:
    return s.audit(KEY, DAY, kind="follow_up", bureau=bureau)


@pytest.mark.parametrize(
    ("build", "message", "bureau", "state_after", "reason"),
    [
        (failed, _reaction, A, "awaiting_reaudit", None),
        (failed, _reaction, B, "audit_failed", "not_the_reports_bureau"),
        (awaiting_reaudit, _reaudit, A, "registered", None),
        (awaiting_reaudit, _reaudit, B, "awaiting_reaudit", "not_the_bureau_of_record"),
        (conditional, _follow_up, A, "registered", None),
        (conditional, _follow_up, B, "registered_conditionally", "not_the_bureau_of_record"),
        (starter, _follow_up, A, "registered", None),
        (starter, _follow_up, B, "admitted_temporarily", "not_the_bureau_of_record"),
    ],
)
def test_r13_only_the_bureau_of_record_counts(
    build: object, message: object, bureau: str, state_after: str, reason: str | None
) -> None:
    life = build()  # type: ignore[operator]
    before = life.registration
    assert before.bureau == A
    outcome = life.send(message(bureau), DAY)  # type: ignore[operator]
    assert life.state == state_after
    assert _reasons(outcome) == ([reason] if reason else [])
    if reason:
        assert life.registration == before  # nothing changed, deadlines included


def test_r13_the_first_audit_may_come_from_any_appointed_bureau_and_makes_it_of_record() -> None:
    life = Life()
    life.send(s.request(KEY), DAY)
    life.send(s.declaration(KEY, DAY), DAY)
    life.send(s.audit(KEY, DAY, bureau=B), DAY)
    assert life.state == "registered" and life.registration.bureau == B  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("build", "then", "state_after"),
    [
        (failed, _reaction, "awaiting_reaudit"),
        (awaiting_reaudit, _reaudit, "registered"),
        (conditional, _follow_up, "registered"),
        (starter, _follow_up, "registered"),
    ],
)
def test_r13_after_the_back_office_moves_the_case_only_the_new_bureau_counts(
    build: object, then: object, state_after: str
) -> None:
    life = build()  # type: ignore[operator]
    before = life.registration
    moved = life.send(s.bureau_changed(KEY, B, DAY, reference="VLAIO-1"), DAY)
    assert moved.rule == "R13" and moved.events == ()
    assert life.registration.bureau == B
    assert life.registration.state == before.state
    assert life.registration.reaction_deadline == before.reaction_deadline
    assert _reasons(life.send(then(A), DAY)) in (  # type: ignore[operator]
        ["not_the_reports_bureau"],
        ["not_the_bureau_of_record"],
    )
    life.send(then(B), DAY)  # type: ignore[operator]
    assert life.state == state_after


@pytest.mark.parametrize(
    ("bureau", "reason"),
    [("0326541491", "bureau_not_appointed"), (A, "bureau_already_of_record")],
)
def test_r13_a_move_to_a_bureau_that_cannot_take_it_changes_nothing(
    bureau: str, reason: str
) -> None:
    life = failed()
    before = life.registration
    outcome = life.send(s.bureau_changed(KEY, bureau, DAY), DAY)
    assert _reasons(outcome) == [reason]
    assert life.registration == before


def test_r13_a_move_before_any_bureau_is_of_record_is_not_awaited() -> None:
    life = Life()
    life.send(s.request(KEY), DAY)
    outcome = life.send(s.bureau_changed(KEY, B, DAY), DAY)
    assert _reasons(outcome) == ["bureau_change_not_awaited"]


def test_r13_a_registration_stored_before_the_rule_takes_the_bureau_of_its_next_report() -> None:
    life = failed()
    assert life.registration is not None
    life.registration = life.registration.model_copy(update={"bureau": None})  # an old document
    life.send(_reaction(B), DAY)
    assert life.state == "awaiting_reaudit"
    life.send(_reaudit(B), DAY)
    assert life.state == "registered" and life.registration.bureau == B
