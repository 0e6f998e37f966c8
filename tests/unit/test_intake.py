"""Dead-letter reasons in contract.md's order, and who may publish what."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from worker import config
from worker import samples as s
from worker.contracts.schemas import Validators
from worker.service import intake

VALIDATORS = Validators()
KEY = s.key("1543301276")
OTHER_BUREAU = "0326541491"
SETTINGS = config.Settings(
    broker_url="amqp://guest:guest@localhost//",
    publishers={
        "desk": config.Publisher(role="desk"),
        "vlaio": config.Publisher(role="back_office"),
        "bqa": config.Publisher(role="audit_bureau", audit_bureau=s.APPOINTED_BUREAU),
        "rogue": config.Publisher(role="audit_bureau", audit_bureau=OTHER_BUREAU),
    },
    audit_bureaus=frozenset({s.APPOINTED_BUREAU}),
)


def check(document: Any, user: str | None = "desk", **kw: Any) -> intake.Accepted | intake.Rejected:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return intake.check(body, {"user_id": user} if user else {}, VALIDATORS, SETTINGS, **kw)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"x" * 300_000, "too_large"),
        (b"{not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_json"),
        # RFC 8259: no NaN, and UTF-8 only (the standard library took both).
        (json.dumps({**s.request(KEY), "score": float("nan")}).encode(), "not_json"),
        (json.dumps(s.request(KEY)).encode("utf-16"), "not_json"),
        (json.dumps({"type": "registration.cancelled", "id": "1"}).encode(), "unknown_type"),
        (json.dumps({"type": "decision.registered", "id": "1"}).encode(), "unknown_type"),
        (json.dumps({**s.request(KEY), "data": {}}).encode(), "schema_violation"),
    ],
)
def test_bad_input_reasons(body: bytes, reason: str) -> None:
    verdict = check(body)
    assert isinstance(verdict, intake.Rejected)
    assert verdict.reason == reason
    assert verdict.error


def test_a_type_other_than_the_routing_key_is_a_schema_violation_naming_both() -> None:
    declaration = s.declaration(KEY, dt.date(2027, 2, 1))
    verdict = check(declaration, routing_key="registration.requested")
    assert isinstance(verdict, intake.Rejected) and verdict.reason == "schema_violation"
    assert "'declaration.received'" in verdict.error
    assert "'registration.requested'" in verdict.error
    assert isinstance(check(declaration, routing_key="declaration.received"), intake.Accepted)


def test_a_field_the_contract_does_not_name_is_accepted_and_named_or_refused_when_strict() -> None:
    report = _audit()
    report["data"]["auditor_comment"] = "a field bureaus added this spring"
    verdict = check(report, user="bqa")
    assert isinstance(verdict, intake.Accepted)
    assert verdict.unknown == ("/data/auditor_comment",)
    assert "auditor_comment" in verdict.body  # the archive keeps it as received
    strict = SETTINGS.model_copy(update={"strict_contracts": True})
    body = json.dumps(report).encode()
    refused = intake.check(body, {"user_id": "bqa"}, VALIDATORS, strict)
    assert isinstance(refused, intake.Rejected) and refused.reason == "schema_violation"
    assert "/data/auditor_comment" in refused.error
    report["data"]["result"] = 3  # a known field of the wrong type stays a violation
    wrong = check(report, user="bqa")
    assert isinstance(wrong, intake.Rejected) and wrong.reason == "schema_violation"


@pytest.mark.parametrize(
    ("dataschema", "accepted"),
    [
        (None, True),
        ("urn:kmo:schema:audit.reported:1.0", True),
        ("urn:kmo:schema:audit.reported:1.7", True),  # a newer minor: read tolerantly
        ("urn:kmo:schema:audit.reported:2.0", False),  # another major: which ones it reads
        ("urn:kmo:schema:declaration.received:1.0", False),
        ("https://example.org/audit.json", False),
    ],
)
def test_a_claimed_dataschema_must_be_a_version_the_worker_reads(
    dataschema: str | None, accepted: bool
) -> None:
    report = _audit()
    if dataschema is not None:
        report["dataschema"] = dataschema
    verdict = check(report, user="bqa")
    assert isinstance(verdict, intake.Accepted) == accepted
    if dataschema and dataschema.endswith("2.0"):
        assert isinstance(verdict, intake.Rejected) and verdict.reason == "schema_violation"
        assert "urn:kmo:schema:audit.reported:1.x" in verdict.error


def test_size_is_checked_before_anything_else() -> None:
    small = SETTINGS.model_copy(update={"max_message_bytes": 1024})
    verdict = intake.check(b"{" * 2000, {"user_id": "desk"}, VALIDATORS, small)
    assert isinstance(verdict, intake.Rejected) and verdict.reason == "too_large"
    assert "the limit is 1024" in verdict.error


def test_schema_is_checked_before_the_publisher() -> None:
    verdict = check({**s.request(KEY), "data": {}}, user="nobody")
    assert isinstance(verdict, intake.Rejected) and verdict.reason == "schema_violation"
    assert verdict.error.startswith("/data")


def test_a_valid_message_is_accepted() -> None:
    document = s.request(KEY)
    verdict = check(document)
    assert isinstance(verdict, intake.Accepted)
    assert (verdict.id, verdict.type) == (document["id"], "registration.requested")


def _audit(bureau: str = s.APPOINTED_BUREAU) -> dict[str, Any]:
    return s.audit(KEY, dt.date(2027, 1, 1), bureau=bureau)


@pytest.mark.parametrize(
    ("document", "user", "allowed"),
    [
        (s.request(KEY), "desk", True),
        (s.request(KEY), None, False),  # no user_id at all
        (s.request(KEY), "stranger", False),
        (s.request(KEY), "bqa", False),  # a bureau may not file requests
        (s.approval(KEY, dt.date(2027, 1, 1)), "vlaio", True),
        (s.approval(KEY, dt.date(2027, 1, 1)), "desk", False),
        (_audit(), "bqa", True),
        (_audit(), "desk", False),  # forged by the desk's account
        (_audit(), "rogue", False),  # another bureau's account
        (_audit(OTHER_BUREAU), "rogue", False),  # its own, but not appointed
        (s.reaction(KEY, "AR-1", dt.date(2027, 1, 1)), "bqa", True),
        (s.reaction(KEY, "AR-1", dt.date(2027, 1, 1), bureau=OTHER_BUREAU), "bqa", False),
    ],
)
def test_who_may_publish_what(document: dict[str, Any], user: str | None, allowed: bool) -> None:
    verdict = check(document, user=user)
    if allowed:
        assert isinstance(verdict, intake.Accepted)
    else:
        assert isinstance(verdict, intake.Rejected) and verdict.reason == "unauthorized_publisher"


def test_authentication_is_off_only_when_said_so() -> None:
    assert config.Settings(broker_url="amqp://x@y//").authenticate
    assert config.Settings(broker_url="amqps://x@y//").authenticate
    assert not config.Settings().authenticate  # the embedded transport has no users
    assert not config.Settings(broker_url="amqp://x@y//", auth_required=False).authenticate


OPERATOR_SETTINGS = SETTINGS.model_copy(
    update={"publishers": {**SETTINGS.publishers, "kmo-worker": config.Publisher(role="operator")}}
)


@pytest.mark.parametrize(
    ("original", "allowed"),
    [("bqa", True), ("desk", False), (None, False), ("kmo-worker", False), ("nobody", False)],
)
def test_an_operator_replays_on_behalf_of_the_original_publisher(
    original: str | None, allowed: bool
) -> None:
    headers = {"x-kmo-original-user-id": original} if original else {}
    body = json.dumps(_audit()).encode()
    verdict = intake.check(
        body, {"user_id": "kmo-worker"}, VALIDATORS, OPERATOR_SETTINGS, headers=headers
    )
    assert isinstance(verdict, intake.Accepted) is allowed


def test_only_an_operator_may_speak_for_another_publisher() -> None:
    body = json.dumps(_audit()).encode()
    verdict = intake.check(
        body,
        {"user_id": "desk"},
        VALIDATORS,
        OPERATOR_SETTINGS,
        headers={"x-kmo-original-user-id": "bqa"},
    )
    assert isinstance(verdict, intake.Rejected) and verdict.reason == "unauthorized_publisher"


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_trace_context_is_read_from_the_envelope_or_else_the_headers() -> None:
    """CloudEvents' Distributed Tracing extension, structured mode first (#19)."""
    sent = {**s.request(KEY), "traceparent": TRACEPARENT, "tracestate": "desk=1"}
    verdict = check(sent)
    assert isinstance(verdict, intake.Accepted)
    assert verdict.carried == (TRACEPARENT, "desk=1")
    in_headers = check(s.request(KEY), headers={"traceparent": TRACEPARENT})
    assert isinstance(in_headers, intake.Accepted)
    assert in_headers.carried == (TRACEPARENT, None)
    malformed = check({**s.request(KEY), "traceparent": "00-nope-01"})
    assert isinstance(malformed, intake.Accepted) and malformed.carried is None  # ignored


def test_when_it_was_sent_comes_from_its_time_or_else_the_amqp_timestamp() -> None:
    at = dt.datetime(2027, 2, 1, 9, 30, tzinfo=dt.UTC)
    timed = check({**s.request(KEY), "time": "2027-02-01T09:30:00Z"})
    assert isinstance(timed, intake.Accepted) and timed.sent_at == at
    assert intake.sent_at(None, at.timestamp()) == at
    assert intake.sent_at(None, None) is None
