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
    """Message data: unknown fields are an error, so a typo upstream is caught, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisteredOffice(Strict):
    kind: Literal["registered_office"]


class Department(Strict):
    kind: Literal["department"]
    department_id: NonEmpty


Unit = Annotated[RegisteredOffice | Department, Field(discriminator="kind")]


class Recipient(Strict):
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]
    language: Language


class KeyIn(Strict):
    """The registration key as upstream may spell it."""

    enterprise_number: EnterpriseNumberSpelling
    unit: Unit
    service: Service


class Key(Strict):
    """The registration key as the worker publishes it: always ten digits."""

    enterprise_number: Annotated[str, Field(pattern=ENTERPRISE_NUMBER)]
    unit: Unit
    service: Service
