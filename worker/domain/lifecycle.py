"""The transition table: (state, trigger) → the rule that decides. Hold it against lifecycle.md.

`decide` runs an inbound message through it, `fire` a timer. Both are pure: the business date
comes in through the `Context`, and the registration number for a new key from the caller.
Every (state, message) pair has an outcome (R11): a pair missing from the table is answered
with `message.ignored` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from worker.contracts.common import Key, State
from worker.contracts.inbound import (
    ApprovalGranted,
    AuditReported,
    BureauChanged,
    DeadlineExtension,
    DeclarationReceived,
    ErasureRequested,
    InboundData,
    ReactionReceived,
    RegistrationRequested,
    Retraction,
    StopOrder,
    Withdrawal,
)
from worker.contracts.outbound import (
    EventData,
    Expiring,
    FollowUpDue,
    Period,
    ReactionDue,
    StarterModulesDue,
)
from worker.domain import actions, identifiers, transitions
from worker.domain.model import TERMINAL, Context, Registration
from worker.domain.outcome import Message, Outcome, event, ignored
from worker.domain.schedule import Timer, timers_for

Rule = Callable[[Registration, Message, Context], Outcome]

S = State
R = transitions
TABLE: dict[tuple[State, str], Rule] = {
    # R2: the declaration is recorded whenever it comes before a decision needs it.
    (S.REQUESTED, "declaration"): R.declaration,
    (S.AUDIT_FAILED, "declaration"): R.declaration,
    (S.AWAITING_REAUDIT, "declaration"): R.declaration,
    # R1, R3, R6, R7: the first audit, and the new audit after a reaction.
    (S.REQUESTED, "audit.passed"): R.audit,
    (S.REQUESTED, "audit.conditional"): R.audit,
    (S.REQUESTED, "audit.failed"): R.audit,
    (S.AWAITING_REAUDIT, "audit.passed"): R.audit,
    (S.AWAITING_REAUDIT, "audit.conditional"): R.audit,
    (S.AWAITING_REAUDIT, "audit.failed"): R.audit,
    # R6: a reaction to a failed audit.
    (S.AUDIT_FAILED, "reaction"): R.reaction,
    # R3: the minister's approval starts a conditional registration.
    (S.AWAITING_APPROVAL, "approval"): R.approval,
    # R4, R5: the follow-up audit of a conditional registration.
    (S.REGISTERED_CONDITIONALLY, "follow_up.passed"): R.conditional_follow_up,
    (S.REGISTERED_CONDITIONALLY, "follow_up.conditional"): R.conditional_follow_up,
    (S.REGISTERED_CONDITIONALLY, "follow_up.failed"): R.conditional_follow_up,
    (S.REGISTERED_CONDITIONALLY, "follow_up.not_performed"): R.conditional_follow_up,
    # R7: the starter's two modules.
    (S.ADMITTED_TEMPORARILY, "follow_up.passed"): R.starter_follow_up,
    (S.ADMITTED_TEMPORARILY, "follow_up.conditional"): R.starter_follow_up,
    (S.ADMITTED_TEMPORARILY, "follow_up.failed"): R.starter_follow_up,
    (S.ADMITTED_TEMPORARILY, "follow_up.not_performed"): R.starter_follow_up,
    # R13: the back office moves a case to another bureau, once a bureau is of record.
    **{
        (state, "bureau_change"): R.bureau_change
        for state in (
            S.AUDIT_FAILED,
            S.AWAITING_REAUDIT,
            S.AWAITING_APPROVAL,
            S.REGISTERED_CONDITIONALLY,
            S.ADMITTED_TEMPORARILY,
            S.REGISTERED,
        )
    },
    # R14: the provider withdraws a live request or registration.
    **{(state, "withdrawal"): actions.withdraw for state in S if state not in TERMINAL},
    # R15: VLAIO stops a registration.
    **{(state, "stop_order"): actions.stop for state in actions.STOPPABLE},
    # R16: the back office moves a deadline the registration waits for.
    **{(state, "extension.follow_up"): actions.extend for state in actions.FOLLOW_UP_HELD},
    **{(state, "extension.reaction"): actions.extend for state in actions.REACTION_HELD},
    # R19: the personal data of a closed registration erased at the back office's request.
    **{(state, "erasure"): actions.erase_on_request for state in TERMINAL},
}
# R13: where a reaction or an audit must come from the bureau of record.
OF_RECORD = frozenset(
    {S.AUDIT_FAILED, S.AWAITING_REAUDIT, S.REGISTERED_CONDITIONALLY, S.ADMITTED_TEMPORARILY}
)

TimerRule = Callable[[Registration, Context], Outcome]
TIMER_TABLE: dict[tuple[State, str], TimerRule] = {
    (S.REGISTERED_CONDITIONALLY, "deadline.follow_up"): R.stop_follow_up_missed,  # R5
    (S.AUDIT_FAILED, "deadline.reaction"): R.refuse_no_reaction,  # R6
    (S.ADMITTED_TEMPORARILY, "deadline.period_end"): R.expire,  # R7
    (S.REGISTERED, "deadline.period_end"): R.expire,  # R8
    (S.REGISTERED_CONDITIONALLY, "deadline.period_end"): R.expire,  # R8
}

TRIGGERS = (
    "request",
    "declaration",
    "audit.passed",
    "audit.conditional",
    "audit.failed",
    "follow_up.passed",
    "follow_up.conditional",
    "follow_up.failed",
    "follow_up.not_performed",
    "reaction",
    "approval",
    "bureau_change",
    "withdrawal",
    "stop_order",
    "extension.follow_up",
    "extension.reaction",
    "erasure",
)  # and "retraction", which `replay.retract` decides with the registration's life (R17)
# Why a message the table does not allow in a state changes nothing, where `<family>_not_awaited`
# would not say it plainly.
NOT_AWAITED = {
    "extension.follow_up": "no_follow_up_deadline",
    "extension.reaction": "no_reaction_deadline",
    "stop_order": "not_registered",
    "erasure": "registration_live",
}


def trigger(data: InboundData) -> str:
    if isinstance(data, RegistrationRequested):
        return "request"
    if isinstance(data, DeclarationReceived):
        return "declaration"
    if isinstance(data, AuditReported):
        family = "follow_up" if data.kind == "follow_up" else "audit"
        return f"{family}.{data.result}"
    if isinstance(data, ReactionReceived):
        return "reaction"
    if isinstance(data, BureauChanged):
        return "bureau_change"
    if isinstance(data, Withdrawal):
        return "withdrawal"
    if isinstance(data, StopOrder):
        return "stop_order"
    if isinstance(data, DeadlineExtension):
        return f"extension.{data.deadline}"
    if isinstance(data, Retraction):
        return "retraction"
    if isinstance(data, ErasureRequested):
        return "erasure"
    assert isinstance(data, ApprovalGranted)
    return "approval"


def key_of(data: InboundData) -> Key:
    """The registration key as published: the enterprise number always as ten digits."""
    key = data.registration
    number = identifiers.normalise_enterprise_number(key.enterprise_number)
    return Key(enterprise_number=number, unit=key.unit, service=key.service)


def needs_number(registration: Registration | None, data: InboundData) -> bool:
    """Should the caller allocate a registration number before `decide`? (a first request)"""
    return (
        registration is None
        and isinstance(data, RegistrationRequested)
        and identifiers.is_valid_enterprise_number(data.registration.enterprise_number)
    )


def decide(
    registration: Registration | None,
    message: Message,
    ctx: Context,
    number: str | None = None,
) -> Outcome:
    data = message.data
    name = trigger(data)
    if name == "retraction":
        raise TypeError("a retraction needs the registration's life: replay.retract decides it")
    if name == "request":
        return R.request(registration, message, ctx, key_of(data), number)
    if registration is None:
        return ignored(None, key_of(data), message, "unknown_registration")
    if isinstance(data, AuditReported) and data.report_id in registration.reports_seen:
        return ignored(registration, key_of(data), message, "duplicate_report")
    rule = TABLE.get((registration.state, name))
    if registration.state in TERMINAL and rule is None:
        return ignored(registration, key_of(data), message, "registration_closed")
    if rule is None:
        reason = NOT_AWAITED.get(name, name.split(".")[0] + "_not_awaited")
        return ignored(registration, key_of(data), message, reason)
    refusal = _not_of_record(registration, data)
    if refusal is not None:
        return ignored(registration, key_of(data), message, refusal)
    return rule(registration, message, ctx)  # the key as published is needed only above


def _not_of_record(registration: Registration, data: InboundData) -> str | None:
    """R13: a reaction counts only from the bureau that issued the failed report; a re-audit or
    a follow-up audit only from the bureau of record. Interpretation: with no bureau of record
    (a registration stored before R13), any appointed bureau's counts, and becomes it."""
    if registration.bureau is None or registration.state not in OF_RECORD:
        return None
    if not isinstance(data, AuditReported | ReactionReceived):
        return None
    if identifiers.normalise_enterprise_number(data.audit_bureau) == registration.bureau:
        return None
    if isinstance(data, ReactionReceived):
        return "not_the_reports_bureau"
    return "not_the_bureau_of_record"


def fire(registration: Registration, timer: Timer, ctx: Context) -> Outcome:
    """A due timer. One that no longer belongs to the registration's state does nothing."""
    if timer not in timers_for(registration, ctx.offsets):
        return Outcome(registration, (), "R9", "stale timer")
    if timer.kind.startswith("notice."):
        return _notice(registration, timer, ctx)
    return TIMER_TABLE[(registration.state, timer.kind)](registration, ctx)


def _notice(registration: Registration, timer: Timer, ctx: Context) -> Outcome:
    """R9: sent on its day, or late with the true number of days left; never after the date."""
    days_left = (timer.deadline - ctx.today).days
    if days_left < 0:
        return Outcome(registration, (), "R9", "notice too late to be useful")
    notice: EventData
    period: Period | None = registration.period
    if timer.kind == "notice.expiring":
        notice = event(Expiring, registration, period=period, days_left=days_left)
    elif timer.kind == "notice.starter_modules_due":
        notice = event(StarterModulesDue, registration, period=period, days_left=days_left)
    elif timer.kind == "notice.follow_up_due":
        notice = event(
            FollowUpDue, registration, follow_up_deadline=timer.deadline, days_left=days_left
        )
    else:
        notice = event(
            ReactionDue, registration, reaction_deadline=timer.deadline, days_left=days_left
        )
    return Outcome(registration, (notice,), "R9", timer.kind)
