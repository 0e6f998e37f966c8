"""Pieces shared by inbound and outbound messages."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ENTERPRISE_NUMBER_SPELLING = r"^(BE ?)?[0-9]{4}[. ]?[0-9]{3}[. ]?[0-9]{3}$"
ENTERPRISE_NUMBER = r"^[0-9]{10}$"
REGISTRATION_NUMBER = r"^DV\.[OA][0-9]{6}$"

Service = Literal["training", "advice"]
Language = Literal["nl", "fr", "en", "de"]
NonEmpty = Annotated[str, Field(min_length=1, max_length=500)]
EnterpriseNumberSpelling = Annotated[str, Field(pattern=ENTERPRISE_NUMBER_SPELLING)]


class State(StrEnum):
    REQUESTED = "requested"
    AWAITING_APPROVAL = "awaiting_approval"
    REGISTERED = "registered"
    REGISTERED_CONDITIONALLY = "registered_conditionally"
    ADMITTED_TEMPORARILY = "admitted_temporarily"
    AUDIT_FAILED = "audit_failed"
    AWAITING_REAUDIT = "awaiting_reaudit"
    REFUSED = "refused"
    STOPPED = "stopped"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class Strict(BaseModel):
    """Event data, the worker's own: a field the contract does not name is an error (a bug)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Tolerant(BaseModel):
    """Inbound data, and what it shares with events: a field this version does not know is
    accepted and ignored (the archive keeps it, `kmo_unknown_fields_total` counts it, and
    `KMO_STRICT_CONTRACTS` refuses it instead), so a publisher may add an optional field before
    the worker knows it. The fields it knows stay strict: types, formats, required."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class RegisteredOffice(Tolerant):
    kind: Literal["registered_office"]


class Department(Tolerant):
    kind: Literal["department"]
    department_id: NonEmpty


Unit = Annotated[RegisteredOffice | Department, Field(discriminator="kind")]


class Recipient(Tolerant):
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]
    language: Language


class KeyIn(Tolerant):
    """The registration key as upstream may spell it."""

    enterprise_number: EnterpriseNumberSpelling
    unit: Unit
    service: Service


class Key(Strict):
    """The registration key as the worker publishes it: always ten digits."""

    enterprise_number: Annotated[str, Field(pattern=ENTERPRISE_NUMBER)]
    unit: Unit
    service: Service
