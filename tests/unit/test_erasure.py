"""R19: personal data erased, in the core (one table row) and in what the store rewrites."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.unit.test_actions import KEY, life_in
from worker import samples as s
from worker.contracts import personal
from worker.contracts.outbound import Ignored

D = dt.date


def test_r19_a_closed_registration_is_erased_and_keeps_its_state_dates_and_number() -> None:
    life = life_in("registered")
    life.send(s.withdrawal(KEY), D(2027, 1, 4))
    before = life.registration
    assert before is not None and before.recipient is not None
    outcome = life.send(s.erasure_request(KEY), D(2027, 2, 1))
    after = life.registration
    assert outcome.rule == "R19" and outcome.events == ()
    assert after is not None and after.recipient is None and after.erased_on == D(2027, 2, 1)
    unchanged = ("number", "state", "state_since", "period", "declaration_on", "cycle", "bureau")
    assert all(getattr(after, name) == getattr(before, name) for name in unchanged)


@pytest.mark.parametrize("state", ["requested", "registered", "audit_failed"])
def test_r19_a_live_registration_is_not_erased(state: str) -> None:
    life = life_in(state)
    (answer,) = life.send(s.erasure_request(KEY), D(2026, 4, 1)).events
    assert isinstance(answer, Ignored) and answer.reason == "registration_live"
    assert life.registration is not None and life.registration.recipient is not None


def test_r19_a_new_cycle_keeps_the_day_of_the_last_erasure() -> None:
    """The archive of the earlier cycles stays erased; the next erasure is due once it closes."""
    life = life_in("registered")
    life.send(s.withdrawal(KEY), D(2027, 1, 4))
    life.send(s.erasure_request(KEY), D(2027, 2, 1))
    life.send(s.request(KEY), D(2028, 1, 3))
    assert life.registration is not None
    assert life.registration.erased_on == D(2027, 2, 1)
    assert life.registration.recipient is not None  # the new request's contact


def test_every_personal_field_of_a_request_and_a_declaration_is_found_and_marked() -> None:
    request = s.request(KEY)
    clean, found = personal.scrub(request)
    data = request["data"]
    assert found == {
        data["iban"],
        data["contact"]["email"],
        data["requester"]["id_number"],
    }
    assert clean["data"]["iban"] == personal.MARKER
    assert clean["data"]["contact"] == {"email": personal.MARKER, "language": "nl"}
    assert clean["data"]["organisation"] == data["organisation"]  # a company is not a person
    declaration = s.declaration(KEY, D(2026, 3, 2))
    assert personal.scrub(declaration)[1] == {declaration["data"]["signed_by"]}


def test_a_value_is_erased_wherever_it_was_copied_in_any_common_spelling() -> None:
    iban, number = "BE68 5390 0754 7034", "85.07.30-033.61"
    text = json.dumps({"reason": "refund to BE68539007547034 for 85073003361, see mail"})
    clean = personal.replaced(text, personal.spellings({iban, number}))
    assert "BE68" not in clean and "8507" not in clean
    assert json.loads(clean)["reason"] == "refund to [erased] for [erased], see mail"


def test_text_that_is_not_json_has_the_known_values_replaced() -> None:
    clean = personal.replaced("not json: jan@example.com", personal.spellings({"jan@example.com"}))
    assert clean == "not json: [erased]"


def test_short_values_do_not_erase_unrelated_text() -> None:
    assert personal.spellings({"x", "abc", "jan@example.com"}) == ["jan@example.com"]
