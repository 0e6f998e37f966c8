"""One function per row family of the transition table; each names the rule it applies."""

from __future__ import annotations

from worker.contracts.common import Key, State
from worker.contracts.inbound import (
    ApprovalGranted,
    AuditReported,
    BureauChanged,
    DeclarationReceived,
    ReactionReceived,
    RegistrationRequested,
)
from worker.contracts.outbound import (
    AdmittedTemporarily,
    AuditFailed,
    Converted,
    Expired,
    Extended,
    Period,
    Refused,
    Registered,
    RegisteredConditionally,
    RequestAccepted,
    Stopped,
)
from worker.domain import dates, eligibility, identifiers
from worker.domain.model import (
    MONTHS_TO_REACT,
    YEARS_ADMITTED,
    YEARS_EXTENSION,
    YEARS_REGISTERED,
    Context,
    PendingAudit,
    Registration,
)
from worker.domain.outcome import Message, Outcome, enter, event, ignored


def request(
    registration: Registration | None, message: Message, ctx: Context, key: Key, number: str | None
) -> Outcome:
    """Eligibility; a new cycle after a terminal state keeps the registration number."""
    data = message.data
    assert isinstance(data, RegistrationRequested)
    if registration is not None and registration.is_live:
        # Interpretation (lifecycle.md): a second request for a live key changes nothing.
        answer = Refused(
            registration=key,
            registration_number=registration.number,
            state=registration.state,
            notify=True,
            recipient=data.contact,
            reason="duplicate_request",
        )
        return Outcome(registration, (answer,), "eligibility", "duplicate_request")
    reason = eligibility.refusal(data, ctx.audit_bureaus)
    if reason == "invalid_enterprise_number" or (registration is None and number is None):
        answer = Refused(
            registration=key,
            registration_number=None,
            state=None,
            notify=True,
            recipient=data.contact,
            reason="invalid_enterprise_number",
        )
        return Outcome(None, (answer,), "eligibility", "invalid_enterprise_number")
    fresh = Registration(
        key=key,
        number=registration.number if registration else str(number),
        state=State.REFUSED if reason else State.REQUESTED,
        state_since=ctx.today,
        cycle=registration.cycle + 1 if registration else 1,
        starter=data.starter,
        recipient=data.contact,
        reports_seen=registration.reports_seen if registration else (),
        erased_on=registration.erased_on if registration else None,
    )
    if reason:
        return Outcome(fresh, (event(Refused, fresh, reason=reason),), "eligibility", reason)
    return Outcome(fresh, (event(RequestAccepted, fresh),), "eligibility", "request accepted")


def declaration(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R2: recorded whenever it comes; it releases an audit that waited for it."""
    data = message.data
    assert isinstance(data, DeclarationReceived)
    if registration.declaration_on is not None:
        return ignored(registration, registration.key, message, "declaration_already_received")
    declared = registration.model_copy(update={"declaration_on": data.received_on})
    if declared.pending_audit is not None and declared.state in AWAITING_AUDIT:
        return _judge(declared, declared.pending_audit, ctx)
    return Outcome(declared, (), "R2", "declaration recorded")


def audit(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R1, R3, R6, R7 for the first audit (full, or limited for a starter) and a re-audit."""
    data = message.data
    assert isinstance(data, AuditReported)
    expected = "limited" if registration.starter else "full"
    if data.kind != expected:
        return ignored(registration, registration.key, message, f"{expected}_audit_expected")
    seen = _seen(registration, data)
    if data.result == "failed":
        deadline = dates.add_months(data.report_date, MONTHS_TO_REACT)
        failed = enter(
            seen,
            State.AUDIT_FAILED,
            ctx.today,
            reaction_deadline=deadline,
            failed_report_id=data.report_id,
            pending_audit=None,
        )
        decision = event(AuditFailed, failed, reaction_deadline=deadline, findings=data.findings)
        return Outcome(failed, (decision,), "R6", "audit failed")
    if data.kind == "limited" and data.result == "conditional":
        # Interpretation: the starter procedure knows only a positive or negative assessment of
        # the limited audit; a conditional one is not defined, so it changes nothing.
        return ignored(registration, registration.key, message, "conditional_limited_audit")
    if registration.pending_audit is not None:
        return ignored(registration, registration.key, message, "audit_already_received")
    pending = PendingAudit(
        report_id=data.report_id,
        kind=data.kind,
        result=data.result,
        audit_date=data.audit_date,
        follow_up_deadline=data.follow_up_deadline,
    )
    if seen.declaration_on is None:
        waiting = seen.model_copy(update={"pending_audit": pending})
        return Outcome(waiting, (), "R2", "audit recorded; waiting for the declaration")
    return _judge(seen, pending, ctx)


def _seen(registration: Registration, data: AuditReported) -> Registration:
    """The report is recorded, and its bureau is the bureau of record from now on (R13)."""
    bureau = identifiers.normalise_enterprise_number(data.audit_bureau)
    return registration.model_copy(
        update={"reports_seen": (*registration.reports_seen, data.report_id), "bureau": bureau}
    )


def _judge(registration: Registration, audit: PendingAudit, ctx: Context) -> Outcome:
    today = ctx.today
    if audit.result == "conditional":
        waiting = enter(
            registration,
            State.AWAITING_APPROVAL,
            today,
            follow_up_deadline=audit.follow_up_deadline,
            pending_audit=None,
        )
        return Outcome(waiting, (), "R3", "conditional audit; waiting for the minister")
    starter = audit.kind == "limited"
    years = YEARS_ADMITTED if starter else YEARS_REGISTERED
    period = Period(start=today, end=dates.period_end(today, years))
    state = State.ADMITTED_TEMPORARILY if starter else State.REGISTERED
    granted = enter(registration, state, today, period=period, pending_audit=None)
    model = AdmittedTemporarily if starter else Registered
    return Outcome(granted, (event(model, granted, period=period),), "R7" if starter else "R1")


def reaction(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R6: a reaction to the failed report, in time, opens the way to a new audit."""
    data = message.data
    assert isinstance(data, ReactionReceived)
    if data.report_id != registration.failed_report_id:
        return ignored(registration, registration.key, message, "unknown_report")
    deadline = registration.reaction_deadline
    if deadline is not None and not dates.is_met(deadline, data.received_on):
        return ignored(registration, registration.key, message, "reaction_too_late")
    waiting = enter(registration, State.AWAITING_REAUDIT, ctx.today, reaction_deadline=None)
    return Outcome(waiting, (), "R6", "reaction received; waiting for a new audit")


def approval(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R3: the period starts on the date of the minister's approval."""
    data = message.data
    assert isinstance(data, ApprovalGranted)
    start = data.approved_on
    period = Period(start=start, end=dates.period_end(start, YEARS_REGISTERED))
    granted = enter(registration, State.REGISTERED_CONDITIONALLY, ctx.today, period=period)
    decision = event(
        RegisteredConditionally,
        granted,
        period=period,
        follow_up_deadline=granted.follow_up_deadline,
    )
    return Outcome(granted, (decision,), "R3")


def conditional_follow_up(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R4 and R5: the follow-up decides whether a conditional registration stays."""
    data = message.data
    assert isinstance(data, AuditReported)
    seen = _seen(registration, data)
    deadline = registration.follow_up_deadline
    in_time = deadline is None or dates.is_met(deadline, data.audit_date)
    if data.result == "passed" and in_time:
        full = enter(seen, State.REGISTERED, ctx.today, follow_up_deadline=None)
        # "automatisch (zonder verdere berichtgeving)": mailers must stay silent.
        return Outcome(full, (event(Converted, full, notify=False, period=full.period),), "R4")
    # Interpretation: a conditional follow-up still finds the norm unmet, so it counts as failed.
    failed = data.result in ("failed", "conditional")
    reason = "follow_up_failed" if failed else "follow_up_missed"
    stopped = enter(seen, State.STOPPED, ctx.today)
    return Outcome(stopped, (event(Stopped, stopped, reason=reason),), "R5", reason)


def starter_follow_up(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R7: the two modules, passed within the two years, extend the end date by three years."""
    data = message.data
    assert isinstance(data, AuditReported)
    period = registration.period
    assert period is not None
    if data.result != "passed":
        # Interpretation: the admission runs on; the starter may still pass before its end.
        return ignored(registration, registration.key, message, "starter_follow_up_not_passed")
    if not dates.is_met(period.end, data.audit_date):
        return ignored(registration, registration.key, message, "follow_up_too_late")
    longer = Period(start=period.start, end=dates.add_years(period.end, YEARS_EXTENSION))
    extended = enter(_seen(registration, data), State.REGISTERED, ctx.today, period=longer)
    return Outcome(extended, (event(Extended, extended, period=longer),), "R7")


def stop_follow_up_missed(registration: Registration, ctx: Context) -> Outcome:
    stopped = enter(registration, State.STOPPED, ctx.today)
    return Outcome(stopped, (event(Stopped, stopped, reason="follow_up_missed"),), "R5")


def refuse_no_reaction(registration: Registration, ctx: Context) -> Outcome:
    refused = enter(registration, State.REFUSED, ctx.today)
    decision = event(Refused, refused, reason="no_reaction_to_failed_audit")
    return Outcome(refused, (decision,), "R6", "no_reaction_to_failed_audit")


def expire(registration: Registration, ctx: Context) -> Outcome:
    starter = registration.state is State.ADMITTED_TEMPORARILY
    reason = "starter_modules_missing" if starter else "period_ended"
    expired = enter(registration, State.EXPIRED, ctx.today)
    return Outcome(expired, (event(Expired, expired, reason=reason),), "R7" if starter else "R8")


AWAITING_AUDIT = frozenset({State.REQUESTED, State.AWAITING_REAUDIT})


def bureau_change(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R13: the back office moves the case to another appointed bureau; from then on only that
    bureau's reaction and audits count. The state, its deadlines and its timers stay."""
    data = message.data
    assert isinstance(data, BureauChanged)
    bureau = identifiers.normalise_enterprise_number(data.audit_bureau)
    if bureau not in ctx.audit_bureaus:
        return ignored(registration, registration.key, message, "bureau_not_appointed")
    if bureau == registration.bureau:
        return ignored(registration, registration.key, message, "bureau_already_of_record")
    moved = registration.model_copy(update={"bureau": bureau})
    note = f"bureau of record {registration.bureau or 'none'} -> {bureau}, {data.reference}"
    return Outcome(moved, (), "R13", note)
