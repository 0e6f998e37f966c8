"""Acts of people on a case (R14-R16): the provider withdraws, VLAIO stops, the back office
moves a deadline. Each is a row family of the transition table, like the rules of the procedure."""

from __future__ import annotations

from worker.contracts.common import State
from worker.contracts.inbound import DeadlineExtension, ErasureRequested, StopOrder, Withdrawal
from worker.contracts.outbound import DeadlineExtended, Stopped, Withdrawn
from worker.domain.model import Context, Registration
from worker.domain.outcome import Message, Outcome, enter, event, ignored

# R15, interpretation: only a registration (a period granted) can be stopped; a request still in
# the procedure is turned down by the procedure itself, or withdrawn.
STOPPABLE = frozenset(
    {State.REGISTERED, State.REGISTERED_CONDITIONALLY, State.ADMITTED_TEMPORARILY}
)
# R16: where each deadline is the one the registration waits for.
FOLLOW_UP_HELD = frozenset({State.AWAITING_APPROVAL, State.REGISTERED_CONDITIONALLY})
REACTION_HELD = frozenset({State.AUDIT_FAILED})


def withdraw(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R14: a live request or registration ends at the provider's wish; its timers go with the
    state (a terminal state has none)."""
    data = message.data
    assert isinstance(data, Withdrawal)
    withdrawn = enter(registration, State.WITHDRAWN, ctx.today, pending_audit=None)
    decision = event(Withdrawn, withdrawn, reference=data.reference)
    return Outcome(withdrawn, (decision,), "R14", "withdrawn at the provider's request")


def stop(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R15: VLAIO stops a registration (e.g. the norm's "Integriteit"), with its decision's
    reference."""
    data = message.data
    assert isinstance(data, StopOrder)
    stopped = enter(registration, State.STOPPED, ctx.today)
    decision = event(Stopped, stopped, reason="stopped_by_vlaio", reference=data.reference)
    return Outcome(stopped, (decision,), "R15", "stopped_by_vlaio")


def extend(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R16: a follow-up or reaction deadline moves to a later date; the state and its start stay,
    and the timers and notices follow the new date."""
    data = message.data
    assert isinstance(data, DeadlineExtension)
    field = f"{data.deadline}_deadline"
    previous = getattr(registration, field)
    if previous is None:
        return ignored(registration, registration.key, message, f"no_{field}")
    if data.until <= previous:
        return ignored(registration, registration.key, message, "extension_not_later")
    moved = registration.model_copy(update={field: data.until})
    decision = event(
        DeadlineExtended,
        moved,
        deadline=data.deadline,
        previous=previous,
        until=data.until,
        reference=data.reference,
    )
    note = f"{data.deadline} deadline {previous} -> {data.until}"
    return Outcome(moved, (decision,), "R16", note)


def erase_on_request(registration: Registration, message: Message, ctx: Context) -> Outcome:
    """R19: the back office asks that a closed registration's personal data be erased now (a
    live one is not in the table: `registration_live`)."""
    assert isinstance(message.data, ErasureRequested)
    return erase(registration, ctx)


def erase(registration: Registration, ctx: Context) -> Outcome:
    """R19: a closed registration's personal data erased; its state, dates and decisions stay.
    The shell erases the same data wherever else the database holds it, in the same
    transaction."""
    erased = registration.model_copy(update={"recipient": None, "erased_on": ctx.today})
    return Outcome(erased, (), "R19", "personal data erased")
