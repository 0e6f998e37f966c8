"""Data of the events the worker publishes on `kmo.events` (contract.md § Outbound)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from worker.contracts.common import REGISTRATION_NUMBER, Key, Recipient, State, Strict
from worker.contracts.inbound import NORM_CODES

RefusalReason = Literal[
    "invalid_enterprise_number",
    "invalid_iban",
    "iban_not_sepa",
    "provider_is_audit_bureau",
    "department_not_allowed",
    "foreign_requester_needs_bis",
    "missing_user_right",
    "duplicate_request",
    "no_reaction_to_failed_audit",
]
StopReason = Literal["follow_up_failed", "follow_up_missed", "stopped_by_vlaio"]
ExpiryReason = Literal["period_ended", "starter_modules_missing"]
DaysLeft = Annotated[int, Field(ge=0)]


class Period(Strict):
    start: dt.date
    end: dt.date


class EventData(Strict):
    """What every event says: which registration, its number and state after the event, and
    whether a mailer may write to the provider about it. `registration_number`, `state` and
    `recipient` are null only where no registration exists (a refused request whose enterprise
    number is invalid, a message about a key nobody requested)."""

    registration: Key
    registration_number: Annotated[str, Field(pattern=REGISTRATION_NUMBER)] | None
    state: State | None
    notify: bool
    recipient: Recipient | None


class RequestAccepted(EventData):
    pass


class Refused(EventData):
    reason: RefusalReason


class Registered(EventData):
    period: Period


class RegisteredConditionally(EventData):
    period: Period
    follow_up_deadline: dt.date


class AdmittedTemporarily(EventData):
    period: Period


class Extended(EventData):
    period: Period


class Converted(EventData):
    period: Period


class AuditFailed(EventData):
    reaction_deadline: dt.date
    findings: list[NORM_CODES]


class Stopped(EventData):
    reason: StopReason
    # The back office's decision reference, for `stopped_by_vlaio` (R15); null otherwise.
    reference: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class Withdrawn(EventData):
    """R14: the provider withdrew its request or registration; `reference` is the desk's."""

    reference: Annotated[str, Field(min_length=1, max_length=500)]


class DeadlineExtended(EventData):
    """R16: a follow-up or reaction deadline moved to a later date."""

    deadline: Literal["follow_up", "reaction"]
    previous: dt.date
    until: dt.date
    reference: Annotated[str, Field(min_length=1, max_length=500)]


class Corrected(EventData):
    """R17: a message was retracted and the registration replayed without it. `state` is the
    state now, `previous_state` the one the mailers knew; the events listed in `superseded` were
    published on the strength of the retracted message and no longer hold (none is un-sent)."""

    retracted_id: Annotated[str, Field(min_length=1, max_length=200)]
    previous_state: State
    period: Period | None
    follow_up_deadline: dt.date | None
    reaction_deadline: dt.date | None
    superseded: list[str]


class Expired(EventData):
    reason: ExpiryReason


class Expiring(EventData):
    period: Period
    days_left: DaysLeft


class FollowUpDue(EventData):
    follow_up_deadline: dt.date
    days_left: DaysLeft


class ReactionDue(EventData):
    reaction_deadline: dt.date
    days_left: DaysLeft


class StarterModulesDue(EventData):
    period: Period
    days_left: DaysLeft


class Ignored(EventData):
    reason: Annotated[str, Field(pattern=r"^[a-z_]+$")]
    ignored_id: Annotated[str, Field(min_length=1)]


OutboundData = (
    RequestAccepted
    | Refused
    | Registered
    | RegisteredConditionally
    | AdmittedTemporarily
    | Extended
    | Converted
    | AuditFailed
    | Stopped
    | Withdrawn
    | DeadlineExtended
    | Corrected
    | Expired
    | Expiring
    | FollowUpDue
    | ReactionDue
    | StarterModulesDue
    | Ignored
)

OUTBOUND: dict[str, type[OutboundData]] = {
    "decision.request_accepted": RequestAccepted,
    "decision.refused": Refused,
    "decision.registered": Registered,
    "decision.registered_conditionally": RegisteredConditionally,
    "decision.admitted_temporarily": AdmittedTemporarily,
    "decision.extended": Extended,
    "decision.converted": Converted,
    "decision.audit_failed": AuditFailed,
    "decision.stopped": Stopped,
    "decision.withdrawn": Withdrawn,
    "decision.deadline_extended": DeadlineExtended,
    "decision.corrected": Corrected,
    "decision.expired": Expired,
    "notice.expiring": Expiring,
    "notice.follow_up_due": FollowUpDue,
    "notice.reaction_due": ReactionDue,
    "notice.starter_modules_due": StarterModulesDue,
    "message.ignored": Ignored,
}
TYPE_OF: dict[type[EventData], str] = {model: name for name, model in OUTBOUND.items()}
