"""Is a well-formed request eligible? (lifecycle.md § Eligibility of a request)"""

from __future__ import annotations

from worker.contracts.inbound import PROVIDER_USER_RIGHT, RegistrationRequested
from worker.contracts.outbound import RefusalReason
from worker.domain import identifiers


def refusal(request: RegistrationRequested, audit_bureaus: frozenset[str]) -> RefusalReason | None:
    """The first rule the request breaks, in lifecycle.md's order, or None when it is eligible.

    `duplicate_request` is not decided here: it depends on the registration, not on the request.
    """
    key = request.registration
    if not identifiers.is_valid_enterprise_number(key.enterprise_number):
        return "invalid_enterprise_number"
    iban_problem = identifiers.iban_problem(request.iban)
    if iban_problem == "invalid_iban":
        return "invalid_iban"
    if iban_problem == "iban_not_sepa":
        return "iban_not_sepa"
    if identifiers.normalise_enterprise_number(key.enterprise_number) in audit_bureaus:
        return "provider_is_audit_bureau"
    if key.unit.kind == "department" and (
        request.organisation.kind != "higher_education" or not request.department_name
    ):
        return "department_not_allowed"
    if request.organisation.kind == "foreign_company" and not (
        request.requester.id_type == "bis"
        and identifiers.is_valid_bis_number(request.requester.id_number)
    ):
        return "foreign_requester_needs_bis"
    if request.requester.user_right != PROVIDER_USER_RIGHT:
        return "missing_user_right"
    return None
