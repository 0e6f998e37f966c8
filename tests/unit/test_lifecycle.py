"""One table-driven test per rule of lifecycle.md, with concrete dates."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import Life, ctx, message
from worker import samples as s
from worker.contracts.common import Key, State
from worker.contracts.outbound import (
    AuditFailed,
    Converted,
    Expired,
    Expiring,
    Extended,
    FollowUpDue,
    Ignored,
    Period,
    ReactionDue,
    Refused,
    Registered,
    RegisteredConditionally,
    StarterModulesDue,
    Stopped,
)
from worker.domain import lifecycle
from worker.domain.model import NoticeOffsets, Registration

D = dt.date
KEY = s.key("1543301276")


def requested(today: D = D(2026, 3, 2), *, starter: bool = False) -> Life:
    life = Life()
    life.send(s.request(KEY, starter=starter), today)
    return life


# R1 and R2 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "declaration_first", [True, False], ids=["declaration-first", "audit-first"]
)
def test_r1_r2_passed_full_audit_registers_for_five_years_in_any_order(
    declaration_first: bool,
) -> None:
    life = requested()
    first, second = s.declaration(KEY, D(2026, 2, 27)), s.audit(KEY, D(2026, 2, 25))
    if not declaration_first:
        first, second = second, first
    assert life.send(first, D(2026, 3, 1)).events == ()
    assert life.state == "requested"
    (decision,) = life.send(second, D(2026, 3, 2)).events
    assert isinstance(decision, Registered)
    assert (decision.period.start, decision.period.end) == (D(2026, 3, 2), D(2031, 3, 1))
    assert life.state == "registered"


def test_r2_no_registration_without_the_declaration() -> None:
    life = requested()
    life.send(s.audit(KEY, D(2026, 3, 1)), D(2026, 3, 2))
    assert life.state == "requested"
    assert life.registration is not None and life.registration.pending_audit is not None
    assert life.types() == ["decision.request_accepted"]


def test_r2_a_second_declaration_is_ignored() -> None:
    life = requested()
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    (event,) = life.send(s.declaration(KEY, D(2026, 3, 3)), D(2026, 3, 3)).events
    assert isinstance(event, Ignored) and event.reason == "declaration_already_received"


# R3 and R4 ----------------------------------------------------------------------------------


def conditionally_registered() -> Life:
    life = requested()
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    deadline = D(2026, 9, 30)
    life.send(
        s.audit(KEY, D(2026, 3, 5), result="conditional", follow_up_deadline=deadline),
        D(2026, 3, 6),
    )
    assert life.state == "awaiting_approval"
    life.send(s.approval(KEY, D(2026, 4, 1)), D(2026, 4, 2))
    return life


def test_r3_conditional_audit_waits_for_the_minister_and_starts_on_the_approval_date() -> None:
    life = conditionally_registered()
    decision = life.events[-1]
    assert isinstance(decision, RegisteredConditionally)
    assert (decision.period.start, decision.period.end) == (D(2026, 4, 1), D(2031, 3, 31))
    assert decision.follow_up_deadline == D(2026, 9, 30)
    assert life.state == "registered_conditionally"


def test_r4_follow_up_passed_converts_silently_keeping_the_dates() -> None:
    life = conditionally_registered()
    (event,) = life.send(s.audit(KEY, D(2026, 9, 30), kind="follow_up"), D(2026, 10, 2)).events
    assert isinstance(event, Converted)
    assert event.notify is False
    assert (event.period.start, event.period.end) == (D(2026, 4, 1), D(2031, 3, 31))
    assert life.state == "registered"


# R5 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "audit_date", "reason"),
    [
        ("failed", D(2026, 9, 1), "follow_up_failed"),
        ("conditional", D(2026, 9, 1), "follow_up_failed"),
        ("not_performed", D(2026, 9, 1), "follow_up_missed"),
        ("passed", D(2026, 10, 1), "follow_up_missed"),  # passed, but after the deadline
    ],
)
def test_r5_follow_up_not_passed_in_time_stops(result: str, audit_date: D, reason: str) -> None:
    life = conditionally_registered()
    extra = {"follow_up_deadline": D(2026, 12, 1)} if result == "conditional" else {}
    document = s.audit(KEY, audit_date, kind="follow_up", result=result, **extra)  # type: ignore[arg-type]
    (event,) = life.send(document, D(2026, 10, 2)).events
    assert isinstance(event, Stopped) and event.reason == reason
    assert life.state == "stopped"


def test_r5_timer_stops_the_day_after_the_follow_up_deadline() -> None:
    life = conditionally_registered()
    life.advance(D(2026, 9, 30))
    assert life.state == "registered_conditionally"  # the deadline itself is still in time
    life.advance(D(2026, 10, 1))
    stopped = life.events[-1]
    assert isinstance(stopped, Stopped) and stopped.reason == "follow_up_missed"


# R6 -----------------------------------------------------------------------------------------


def failed(report_date: D = D(2026, 8, 31)) -> Life:
    life = requested()
    life.send(
        s.audit(KEY, report_date, result="failed", report_id="AR-1", findings=["experience"]),
        report_date,
    )
    return life


def test_r6_failed_audit_gives_six_months_to_react() -> None:
    life = failed()
    decision = life.events[-1]
    assert isinstance(decision, AuditFailed)
    assert decision.reaction_deadline == D(2027, 2, 28)  # 2026-08-31 + 6 months
    assert decision.findings == ["experience"]
    assert life.state == "audit_failed"


@pytest.mark.parametrize(
    ("report_id", "received_on", "state", "ignored_reason"),
    [
        ("AR-1", D(2027, 2, 28), "awaiting_reaudit", None),  # on the deadline: in time
        ("AR-1", D(2027, 3, 1), "audit_failed", "reaction_too_late"),
        ("AR-9", D(2027, 1, 1), "audit_failed", "unknown_report"),
    ],
)
def test_r6_reaction(
    report_id: str, received_on: D, state: str, ignored_reason: str | None
) -> None:
    life = failed()
    outcome = life.send(s.reaction(KEY, report_id, received_on), received_on)
    assert life.state == state
    reasons = [e.reason for e in outcome.events if isinstance(e, Ignored)]
    assert reasons == ([ignored_reason] if ignored_reason else [])


def test_r6_no_reaction_refuses_the_day_after_the_deadline() -> None:
    life = failed()
    life.advance(D(2027, 2, 28))
    assert life.state == "audit_failed"
    life.advance(D(2027, 3, 1))
    refused = life.events[-1]
    assert isinstance(refused, Refused) and refused.reason == "no_reaction_to_failed_audit"
    assert life.state == "refused"


@pytest.mark.parametrize(
    ("result", "state"),
    [("passed", "registered"), ("conditional", "awaiting_approval"), ("failed", "audit_failed")],
)
def test_r6_the_new_audit_after_a_reaction_is_judged_like_the_first(
    result: str, state: str
) -> None:
    life = failed()
    life.send(s.declaration(KEY, D(2026, 9, 1)), D(2026, 9, 1))
    life.send(s.reaction(KEY, "AR-1", D(2026, 10, 1)), D(2026, 10, 1))
    extra = {"follow_up_deadline": D(2027, 6, 1)} if result == "conditional" else {}
    life.send(s.audit(KEY, D(2026, 12, 1), result=result, **extra), D(2026, 12, 2))  # type: ignore[arg-type]
    assert life.state == state


# R7 -----------------------------------------------------------------------------------------


def admitted(today: D = D(2026, 3, 1)) -> Life:
    life = requested(today, starter=True)
    life.send(s.declaration(KEY, today), today)
    life.send(s.audit(KEY, today, kind="limited"), today)
    return life


def test_r7_starter_is_admitted_for_two_years() -> None:
    life = admitted()
    assert life.state == "admitted_temporarily"
    period = life.registration.period if life.registration else None
    assert period is not None and (period.start, period.end) == (D(2026, 3, 1), D(2028, 2, 29))


def test_r7_modules_passed_in_time_extend_the_end_by_three_years() -> None:
    life = admitted()
    (event,) = life.send(s.audit(KEY, D(2028, 2, 29), kind="follow_up"), D(2028, 3, 1)).events
    assert isinstance(event, Extended)
    assert (event.period.start, event.period.end) == (D(2026, 3, 1), D(2031, 2, 28))
    assert life.state == "registered"


def test_r7_no_modules_by_the_end_expires_the_admission() -> None:
    life = admitted()
    life.advance(D(2028, 3, 1))
    expired = life.events[-1]
    assert isinstance(expired, Expired) and expired.reason == "starter_modules_missing"


@pytest.mark.parametrize(
    ("starter", "kind", "reason"),
    [(False, "limited", "full_audit_expected"), (True, "full", "limited_audit_expected")],
)
def test_r7_r10_audit_kind_must_fit_the_provider(starter: bool, kind: str, reason: str) -> None:
    life = requested(starter=starter)
    (event,) = life.send(s.audit(KEY, D(2026, 3, 2), kind=kind), D(2026, 3, 2)).events
    assert isinstance(event, Ignored) and event.reason == reason
    assert life.state == "requested"


# R8 and R9 ----------------------------------------------------------------------------------


def test_r8_expiry_the_day_after_the_end_with_notices_at_90_and_30_days() -> None:
    life = requested()
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    life.send(s.audit(KEY, D(2026, 3, 2)), D(2026, 3, 2))  # registered 2026-03-02 .. 2031-03-01
    life.advance(D(2030, 12, 1))  # 2031-03-01 − 90 days
    life.advance(D(2031, 1, 30))  # − 30 days
    life.advance(D(2031, 3, 1))
    assert life.state == "registered"
    life.advance(D(2031, 3, 2))
    notices = [e for e in life.events if isinstance(e, Expiring)]
    assert [n.days_left for n in notices] == [90, 30]
    expired = life.events[-1]
    assert isinstance(expired, Expired) and expired.reason == "period_ended"


def test_r9_a_late_notice_says_the_true_days_left_and_goes_once() -> None:
    life = requested()
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    life.send(s.audit(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    life.advance(D(2030, 12, 11))  # ten days late for the 90-day notice
    life.advance(D(2030, 12, 12))
    notices = [e for e in life.events if isinstance(e, Expiring)]
    assert [n.days_left for n in notices] == [80]


def test_r9_notices_whose_day_fell_before_the_state_began_are_not_sent() -> None:
    life = requested()
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    # a conditional audit whose follow-up deadline is only 20 days after the approval
    life.send(
        s.audit(KEY, D(2026, 3, 2), result="conditional", follow_up_deadline=D(2026, 4, 21)),
        D(2026, 3, 2),
    )
    life.send(s.approval(KEY, D(2026, 4, 1)), D(2026, 4, 1))
    life.advance(D(2026, 4, 21))
    assert not [e for e in life.events if isinstance(e, FollowUpDue)]


@pytest.mark.parametrize(
    ("build", "today", "model"),
    [
        (conditionally_registered, D(2026, 8, 31), FollowUpDue),  # 30 days before 2026-09-30
        (failed, D(2027, 1, 29), ReactionDue),  # 30 days before 2027-02-28
        (admitted, D(2027, 12, 1), StarterModulesDue),  # 90 days before 2028-02-29
    ],
)
def test_r9_deadline_notices(build: object, today: D, model: type) -> None:
    life = build()  # type: ignore[operator]
    life.advance(today)
    notices = [e for e in life.events if isinstance(e, model)]
    assert len(notices) == 1
    assert notices[0].days_left == (30 if model is not StarterModulesDue else 90)


def test_r9_a_starter_gets_no_expiring_notice() -> None:
    life = admitted()
    life.advance(D(2028, 2, 28))
    assert not [e for e in life.events if isinstance(e, Expiring)]


# R11 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "document", "reason"),
    [
        (requested, s.audit(KEY, D(2026, 4, 1), kind="follow_up"), "follow_up_not_awaited"),
        (requested, s.approval(KEY, D(2026, 4, 1)), "approval_not_awaited"),
        (requested, s.reaction(KEY, "AR-1", D(2026, 4, 1)), "reaction_not_awaited"),
        (conditionally_registered, s.audit(KEY, D(2026, 4, 3)), "audit_not_awaited"),
        (conditionally_registered, s.approval(KEY, D(2026, 4, 3)), "approval_not_awaited"),
        (Life, s.declaration(KEY, D(2026, 4, 1)), "unknown_registration"),
        (Life, s.audit(KEY, D(2026, 4, 1)), "unknown_registration"),
    ],
)
def test_r11_messages_the_rules_do_not_allow_change_nothing(
    setup: object, document: dict[str, object], reason: str
) -> None:
    life = setup()  # type: ignore[operator]
    before = life.registration
    (event,) = life.send(document, D(2026, 4, 4)).events
    assert isinstance(event, Ignored)
    assert (event.reason, event.ignored_id, event.notify) == (reason, document["id"], False)
    assert life.registration == before


def test_r11_a_second_copy_of_the_same_report_is_ignored() -> None:
    life = requested()
    report = s.audit(KEY, D(2026, 3, 2), report_id="AR-7")
    life.send(report, D(2026, 3, 2))
    copy = {**report, "id": "another-delivery"}
    (event,) = life.send(copy, D(2026, 3, 3)).events
    assert isinstance(event, Ignored) and event.reason == "duplicate_report"


def test_r11_a_report_after_the_registration_was_stopped_is_ignored() -> None:
    life = conditionally_registered()
    life.send(s.audit(KEY, D(2026, 9, 1), kind="follow_up", result="failed"), D(2026, 9, 2))
    (event,) = life.send(s.audit(KEY, D(2026, 9, 3), kind="follow_up"), D(2026, 9, 4)).events
    assert isinstance(event, Ignored) and event.reason == "registration_closed"
    assert life.state == "stopped"


def test_terminal_state_restarts_with_a_new_request_under_the_same_number() -> None:
    life = failed()
    life.advance(D(2027, 3, 1))
    number = life.registration.number if life.registration else None
    life.send(s.request(KEY), D(2027, 3, 5))
    assert life.state == "requested"
    assert life.registration is not None
    assert (life.registration.number, life.registration.cycle) == (number, 2)
    assert life.registration.declaration_on is None


# R11: totality over (state, message) -----------------------------------------------------------


def _in_state(state: str) -> Registration:
    return Registration(
        key=Key(
            enterprise_number="1543301276", unit={"kind": "registered_office"}, service="training"
        ),
        number="DV.O000001",
        state=State(state),
        state_since=D(2026, 3, 2),
        starter=False,
        period=Period(start=D(2026, 3, 2), end=D(2031, 3, 1)),
        follow_up_deadline=D(2026, 9, 30),
        reaction_deadline=D(2026, 9, 30),
        failed_report_id="AR-1",
    )


def _message_for(trigger: str) -> dict[str, object]:
    day = D(2026, 4, 1)
    if trigger == "request":
        return s.request(KEY)
    if trigger == "declaration":
        return s.declaration(KEY, day)
    if trigger == "reaction":
        return s.reaction(KEY, "AR-1", day)
    if trigger == "approval":
        return s.approval(KEY, day)
    if trigger == "bureau_change":
        return s.bureau_changed(KEY, s.SECOND_BUREAU, day)
    if trigger == "withdrawal":
        return s.withdrawal(KEY)
    if trigger == "stop_order":
        return s.stop_order(KEY)
    if trigger == "erasure":
        return s.erasure_request(KEY)
    if trigger.startswith("extension."):
        return s.deadline_extension(KEY, trigger.split(".")[1], D(2027, 1, 31))
    family, result = trigger.split(".")
    kind = "follow_up" if family == "follow_up" else "full"
    extra = {"follow_up_deadline": D(2026, 12, 1)} if result == "conditional" else {}
    return s.audit(KEY, day, kind=kind, result=result, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", [state.value for state in State])
@pytest.mark.parametrize("trigger", lifecycle.TRIGGERS)
def test_r11_every_state_and_message_pair_has_an_outcome(state: str, trigger: str) -> None:
    before = _in_state(state)
    document = _message_for(trigger)
    outcome = lifecycle.decide(before, message(document), ctx(D(2026, 4, 2)), None)
    assert outcome.events or outcome.registration != before
    ignored = [e for e in outcome.events if isinstance(e, Ignored)]
    if ignored:
        assert outcome.registration == before, "an ignored message changed the registration"
        assert ignored[0].ignored_id == document["id"]
    if (State(state), trigger) not in lifecycle.TABLE and trigger != "request":
        assert ignored, "a pair missing from the table must be answered with message.ignored"


def test_r9_offsets_are_configuration() -> None:
    life = Life(offsets=NoticeOffsets(expiring=(60, 7)))
    life.send(s.request(KEY), D(2026, 3, 2))
    life.send(s.declaration(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    life.send(s.audit(KEY, D(2026, 3, 2)), D(2026, 3, 2))
    for day in (D(2030, 12, 1), D(2030, 12, 31), D(2031, 2, 22)):
        life.advance(day)
    assert [e.days_left for e in life.events if isinstance(e, Expiring)] == [60, 7]
