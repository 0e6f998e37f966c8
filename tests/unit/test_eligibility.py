"""lifecycle.md § Eligibility of a request: one row per rule, valid and invalid."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support import Life
from worker import samples as s
from worker.contracts.outbound import Refused

TODAY = dt.date(2027, 2, 1)
OFFICE = s.key("1543301276")
RIGHT = s.USER_RIGHT
FOREIGN = {"name": "Conseil SARL", "kind": "foreign_company", "country": "FR"}
UNIVERSITY = {"name": "UGent", "kind": "higher_education", "country": "BE"}


def _answer(document: dict[str, Any]) -> tuple[str | None, str | None]:
    life = Life()
    outcome = life.send(document, TODAY)
    (event,) = outcome.events
    reason = event.reason if isinstance(event, Refused) else None
    return life.state, reason


@pytest.mark.parametrize(
    ("document", "state", "reason"),
    [
        pytest.param(s.request(OFFICE), "requested", None, id="eligible"),
        pytest.param(
            s.request(s.key("BE 1543.301.276")), "requested", None, id="BE-prefixed-and-dotted"
        ),
        pytest.param(
            s.request(s.key("1543301277")), None, "invalid_enterprise_number", id="check-digits"
        ),
        pytest.param(
            s.request(s.key("2543301276")), None, "invalid_enterprise_number", id="first-digit"
        ),
        pytest.param(
            s.request(OFFICE, iban="BE68539007547035"), "refused", "invalid_iban", id="iban-sum"
        ),
        pytest.param(
            s.request(OFFICE, iban="TR330006100519786457841326"),
            "refused",
            "iban_not_sepa",
            id="iban-outside-sepa",
        ),
        pytest.param(
            s.request(s.key(s.APPOINTED_BUREAU)),
            "refused",
            "provider_is_audit_bureau",
            id="audit-bureau",
        ),
        pytest.param(
            s.request(
                s.key("0240505560", department="FEB"),
                organisation=UNIVERSITY,
                department_name="Economie",
            ),
            "requested",
            None,
            id="department-of-a-university",
        ),
        pytest.param(
            s.request(s.key("0240505560", department="FEB"), department_name="Verkoop"),
            "refused",
            "department_not_allowed",
            id="department-of-a-company",
        ),
        pytest.param(
            s.request(
                s.key("0240505560", department="FEB"),
                organisation=UNIVERSITY,
            ),
            "refused",
            "department_not_allowed",
            id="department-without-name",
        ),
        pytest.param(
            s.request(
                OFFICE,
                organisation=FOREIGN,
                requester={"id_type": "bis", "id_number": "75231500124", "user_right": RIGHT},
            ),
            "requested",
            None,
            id="foreign-with-bis-month-plus-20",
        ),
        pytest.param(
            s.request(
                OFFICE,
                organisation=FOREIGN,
                requester={"id_type": "bis", "id_number": "75431500266", "user_right": RIGHT},
            ),
            "requested",
            None,
            id="foreign-with-bis-month-plus-40",
        ),
        pytest.param(
            s.request(
                OFFICE,
                organisation=FOREIGN,
            ),
            "refused",
            "foreign_requester_needs_bis",
            id="foreign-with-national-number",
        ),
        pytest.param(
            s.request(
                OFFICE,
                organisation=FOREIGN,
                requester={"id_type": "bis", "id_number": "75231500125", "user_right": RIGHT},
            ),
            "refused",
            "foreign_requester_needs_bis",
            id="foreign-with-invalid-bis",
        ),
        pytest.param(
            s.request(
                OFFICE,
                requester={"id_type": "insz", "id_number": s.NATIONAL_NUMBER, "user_right": "x"},
            ),
            "refused",
            "missing_user_right",
            id="wrong-user-right",
        ),
    ],
)
def test_request(document: dict[str, Any], state: str | None, reason: str | None) -> None:
    assert _answer(document) == (state, reason)


def test_an_invalid_enterprise_number_gets_no_registration_number() -> None:
    life = Life()
    (event,) = life.send(s.request(s.key("1543301277")), TODAY).events
    assert event.registration_number is None
    assert event.registration.enterprise_number == "1543301277"
    assert life.registration is None


def test_a_second_request_for_a_live_key_is_answered_and_changes_nothing() -> None:
    life = Life()
    life.send(s.request(OFFICE), TODAY)
    before = life.registration
    (event,) = life.send(s.request(OFFICE, iban="NL91ABNA0417164300"), TODAY).events
    assert isinstance(event, Refused)
    assert event.reason == "duplicate_request"
    assert event.state == "requested"
    assert life.registration == before


def test_the_key_is_published_as_ten_digits() -> None:
    life = Life()
    (event,) = life.send(s.request(s.key("BE1543.301.276")), TODAY).events
    assert event.registration.enterprise_number == "1543301276"
    assert event.registration_number == "DV.O000001"
