"""Builders of valid inbound CloudEvents, shipped with the package: the demo, the tests and the
benchmark use them, and upstream teams can read them as examples. Override any field by keyword.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

APPOINTED_BUREAU = "0403170701"
SECOND_BUREAU = "0410000093"  # another appointed bureau, where a case moves between two
SAMPLE_IBAN = "BE68539007547034"
USER_RIGHT = "kmo-portefeuille-dienstverlener"
BIS_NUMBER = "75231500124"  # born 1975-03-15, month + 20: a valid BIS number
NATIONAL_NUMBER = "85010100313"


def key(
    enterprise_number: str, service: str = "training", department: str | None = None
) -> dict[str, Any]:
    unit: dict[str, Any] = {"kind": "registered_office"}
    if department is not None:
        unit = {"kind": "department", "department_id": department}
    return {"enterprise_number": enterprise_number, "unit": unit, "service": service}


def envelope(
    type_name: str,
    data: dict[str, Any],
    message_id: str | None = None,
    source: str = "urn:kmo:e-loket",
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": message_id or str(uuid.uuid4()),
        "source": source,
        "type": type_name,
        "time": "2026-03-02T09:15:00Z",
        "datacontenttype": "application/json",
        "data": data,
    }


def request(
    registration: dict[str, Any], *, message_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "request_id": fields.pop("request_id", str(uuid.uuid4())),
        "registration": registration,
        "organisation": {"name": "Opleidingen Peeters bv", "kind": "company", "country": "BE"},
        "starter": False,
        "iban": SAMPLE_IBAN,
        "contact": {"email": "info@peeters.example", "language": "nl"},
        "requester": {"id_type": "insz", "id_number": NATIONAL_NUMBER, "user_right": USER_RIGHT},
    }
    data.update(fields)
    return envelope("registration.requested", data, message_id)


def declaration(
    registration: dict[str, Any], received_on: dt.date, *, message_id: str | None = None
) -> dict[str, Any]:
    data = {
        "registration": registration,
        "received_on": received_on.isoformat(),
        "signed_by": "An Peeters",
    }
    return envelope("declaration.received", data, message_id)


def audit(
    registration: dict[str, Any],
    audit_date: dt.date,
    *,
    kind: str = "full",
    result: str = "passed",
    follow_up_deadline: dt.date | None = None,
    report_id: str | None = None,
    bureau: str = APPOINTED_BUREAU,
    findings: list[str] | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "report_id": report_id or f"AR-{uuid.uuid4().hex[:10]}",
        "audit_bureau": bureau,
        "registration": registration,
        "kind": kind,
        "result": result,
        "audit_date": audit_date.isoformat(),
        "report_date": audit_date.isoformat(),
        "findings": findings or [],
    }
    if follow_up_deadline is not None:
        data["follow_up_deadline"] = follow_up_deadline.isoformat()
    return envelope("audit.reported", data, message_id, source=f"urn:kmo:audit-bureau:{bureau}")


def reaction(
    registration: dict[str, Any],
    report_id: str,
    received_on: dt.date,
    *,
    bureau: str = APPOINTED_BUREAU,
    message_id: str | None = None,
) -> dict[str, Any]:
    data = {
        "audit_bureau": bureau,
        "registration": registration,
        "report_id": report_id,
        "received_on": received_on.isoformat(),
    }
    return envelope(
        "audit.reaction_received", data, message_id, source=f"urn:kmo:audit-bureau:{bureau}"
    )


def approval(
    registration: dict[str, Any], approved_on: dt.date, *, message_id: str | None = None
) -> dict[str, Any]:
    data = {
        "registration": registration,
        "approved_on": approved_on.isoformat(),
        "reference": "MB-2027-0042",
    }
    return envelope("approval.granted", data, message_id, source="urn:kmo:back-office")


def bureau_changed(
    registration: dict[str, Any],
    bureau: str,
    changed_on: dt.date,
    *,
    reference: str = "VLAIO-2027-0815",
    message_id: str | None = None,
) -> dict[str, Any]:
    data = {
        "registration": registration,
        "audit_bureau": bureau,
        "changed_on": changed_on.isoformat(),
        "reference": reference,
    }
    return envelope("registration.bureau_changed", data, message_id, source="urn:kmo:back-office")


ACTS: dict[str, tuple[str, dict[str, str]]] = {  # type -> (source, the act's defaults)
    "registration.withdrawn": (
        "urn:kmo:e-loket",
        {
            "actor": "e-loket:provider-user",
            "reason": "The provider stops offering training.",
            "reference": "EL-2027-00017",
        },
    ),
    "registration.stop_ordered": (
        "urn:kmo:back-office",
        {
            "actor": "vlaio:case-officer-12",
            "reason": "Integrity: invoices for training that was not given.",
            "reference": "VLAIO-2027-0815",
        },
    ),
    "deadline.extended": (
        "urn:kmo:back-office",
        {
            "actor": "vlaio:case-officer-12",
            "reason": "Appeal granted: the audit bureau could not plan the follow-up in time.",
            "reference": "VLAIO-2027-0901",
        },
    ),
    "registration.erasure_requested": (
        "urn:kmo:back-office",
        {
            "actor": "vlaio:privacy-officer-3",
            "reason": "Request for erasure under GDPR article 17, identity checked.",
            "reference": "VLAIO-DPO-2032-0042",
        },
    ),
}


def act(
    type_name: str, registration: dict[str, Any], message_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """An act of a person on a case (R14-R16): `actor`, `reason`, `reference` by keyword."""
    source, defaults = ACTS[type_name]
    data = {"registration": registration, **defaults, **fields}
    return envelope(type_name, data, message_id, source=source)


def withdrawal(registration: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The desk, at the provider's request (R14)."""
    return act("registration.withdrawn", registration, **fields)


def stop_order(registration: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The back office stops a registration (R15)."""
    return act("registration.stop_ordered", registration, **fields)


def deadline_extension(
    registration: dict[str, Any], deadline: str, until: dt.date, **fields: Any
) -> dict[str, Any]:
    """The back office moves a follow-up or reaction deadline (R16)."""
    return act(
        "deadline.extended", registration, deadline=deadline, until=until.isoformat(), **fields
    )


def erasure_request(registration: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The back office asks that a closed registration's personal data be erased (R19)."""
    return act("registration.erasure_requested", registration, **fields)


def retraction(
    registration: dict[str, Any],
    retracted_id: str,
    *,
    reason: str = "The report was filed for the wrong provider.",
    source: str = "urn:kmo:back-office",
    message_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A message taken back (R17): by its publisher or the back office."""
    data = {"registration": registration, "retracted_id": retracted_id, "reason": reason, **fields}
    return envelope("message.retracted", data, message_id, source=source)
