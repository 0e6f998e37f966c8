"""Data of the messages upstream systems publish on `kmo.inbound` (contract.md § Inbound)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import Field, StrictBool, WithJsonSchema, model_validator

from worker.contracts.common import (
    EnterpriseNumberSpelling,
    KeyIn,
    NonEmpty,
    Recipient,
    Tolerant,
)

PROVIDER_USER_RIGHT = "kmo-portefeuille-dienstverlener"
NORM_CODES = Literal["activity", "experience", "customer_satisfaction", "knowledge", "integrity"]


class Organisation(Tolerant):
    name: NonEmpty
    kind: Literal["company", "higher_education", "foreign_company"]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Requester(Tolerant):
    id_type: Literal["insz", "bis"]
    id_number: Annotated[str, Field(pattern=r"^[0-9 .\-]{11,15}$")]
    user_right: NonEmpty


class RegistrationRequested(Tolerant):
    request_id: NonEmpty
    registration: KeyIn
    organisation: Organisation
    department_name: NonEmpty | None = None
    starter: StrictBool
    iban: Annotated[str, Field(min_length=5, max_length=42)]
    contact: Recipient
    requester: Requester


class DeclarationReceived(Tolerant):
    registration: KeyIn
    received_on: dt.date
    signed_by: NonEmpty


_CONDITIONAL_NEEDS_DEADLINE: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"result": {"const": "conditional"}}},
            "then": {"required": ["follow_up_deadline"]},
            "else": {"not": {"required": ["follow_up_deadline"]}},
        },
        {
            "if": {"properties": {"result": {"const": "not_performed"}}},
            "then": {"properties": {"kind": {"const": "follow_up"}}},
        },
    ]
}


class AuditReported(Tolerant, json_schema_extra=_CONDITIONAL_NEEDS_DEADLINE):
    report_id: NonEmpty
    audit_bureau: EnterpriseNumberSpelling
    registration: KeyIn
    kind: Literal["full", "limited", "follow_up"]
    result: Literal["passed", "conditional", "failed", "not_performed"]
    audit_date: dt.date
    report_date: dt.date
    follow_up_deadline: Annotated[
        dt.date | None, WithJsonSchema({"type": "string", "format": "date"})
    ] = None
    findings: list[NORM_CODES] = Field(default_factory=list)

    @model_validator(mode="after")
    def _deadline_exactly_when_conditional(self) -> AuditReported:
        if (self.result == "conditional") != (self.follow_up_deadline is not None):
            raise ValueError("follow_up_deadline is required exactly when result is conditional")
        if self.result == "not_performed" and self.kind != "follow_up":
            raise ValueError("result not_performed is only for a follow_up audit")
        return self


class ReactionReceived(Tolerant):
    audit_bureau: EnterpriseNumberSpelling
    registration: KeyIn
    report_id: NonEmpty
    received_on: dt.date


class ApprovalGranted(Tolerant):
    registration: KeyIn
    approved_on: dt.date
    reference: NonEmpty


class BureauChanged(Tolerant):
    """The back office moves a case to another audit bureau (R13)."""

    registration: KeyIn
    audit_bureau: EnterpriseNumberSpelling  # the new bureau of record
    changed_on: dt.date
    reference: NonEmpty  # the back office's file or decision reference


class Action(Tolerant):
    """An act on a case by a person (R14-R16): who acted, why, and under which file or decision
    reference. Recorded in the history; `reason` is free text and never logged."""

    registration: KeyIn
    actor: NonEmpty  # the person or account that acted, as the publisher knows them
    reason: NonEmpty
    reference: NonEmpty


class Withdrawal(Action):
    """The desk, at the provider's request: the live request or registration ends (R14)."""


class StopOrder(Action):
    """The back office: VLAIO stops a registration, e.g. for an integrity breach (R15)."""


class DeadlineExtension(Action):
    """The back office moves a follow-up or reaction deadline to a later date (R16)."""

    deadline: Literal["follow_up", "reaction"]
    until: dt.date


class ErasureRequested(Action):
    """The back office: a closed registration's personal data is erased now (R19), e.g. on the
    data subject's valid request."""


class Retraction(Tolerant):
    """The original publisher or the back office takes back a message sent in error (R17): the
    registration is replayed without it. `reason` is free text and never logged."""

    registration: KeyIn
    retracted_id: Annotated[str, Field(min_length=1, max_length=200)]  # its CloudEvents id
    reason: NonEmpty
    actor: NonEmpty | None = None
    reference: NonEmpty | None = None


InboundData = (
    RegistrationRequested
    | DeclarationReceived
    | AuditReported
    | ReactionReceived
    | ApprovalGranted
    | BureauChanged
    | Withdrawal
    | StopOrder
    | DeadlineExtension
    | Retraction
    | ErasureRequested
)


class Act(NamedTuple):
    """Who acted on a case, why, and under which reference, as the history keeps it."""

    actor: str | None = None
    reason: str | None = None
    reference: str | None = None


def act_of(data: InboundData) -> Act:
    if isinstance(data, Action | Retraction):
        return Act(data.actor, data.reason, data.reference)
    if isinstance(data, ApprovalGranted | BureauChanged):
        return Act(reference=data.reference)
    return Act()


INBOUND: dict[str, type[InboundData]] = {
    "registration.requested": RegistrationRequested,
    "declaration.received": DeclarationReceived,
    "audit.reported": AuditReported,
    "audit.reaction_received": ReactionReceived,
    "approval.granted": ApprovalGranted,
    "registration.bureau_changed": BureauChanged,
    "registration.withdrawn": Withdrawal,
    "registration.stop_ordered": StopOrder,
    "deadline.extended": DeadlineExtension,
    "message.retracted": Retraction,
    "registration.erasure_requested": ErasureRequested,
}
