"""schemas/*.json are the contract: generated from the models, and never drifting from them."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.support import Life
from worker import samples as s
from worker.contracts import envelope, schemas
from worker.contracts.inbound import INBOUND
from worker.contracts.outbound import OUTBOUND
from worker.service import envelopes

VALIDATORS = schemas.Validators()
KEY = s.key("1543301276")
NOW = dt.datetime(2027, 2, 1, 9, 0, tzinfo=dt.UTC)


def test_schema_files_equal_the_models() -> None:
    generated = schemas.documents()
    on_disk = {
        str(p.relative_to(schemas.SCHEMA_DIR)): p.read_text(encoding="utf-8")
        for p in schemas.SCHEMA_DIR.rglob("*.json")
        # Not generated: the last release's snapshot, and old majors still read (`<type>@<n>`).
        if p.parent.name != "released" and "@" not in p.name
    }
    assert set(on_disk) == set(generated), "run `kmo-worker schemas` and commit schemas/"
    for name, schema in generated.items():
        assert on_disk[name] == schemas.render(schema), f"schemas/{name} drifted from the models"


def test_there_is_one_schema_per_message_type_of_the_contract() -> None:
    assert {p.stem for p in schemas.SCHEMA_DIR.glob("*.json")} == set(INBOUND) | set(OUTBOUND)


def test_every_schema_declares_draft_2020_12() -> None:
    for path in schemas.SCHEMA_DIR.glob("*.json"):
        assert json.loads(path.read_text())["$schema"] == schemas.DIALECT


SAMPLES = [
    s.request(KEY),
    s.request(s.key("0240505560", department="FEB"), department_name="Economie"),
    s.declaration(KEY, dt.date(2027, 1, 1)),
    s.audit(KEY, dt.date(2027, 1, 1)),
    s.audit(KEY, dt.date(2027, 1, 1), result="conditional", follow_up_deadline=dt.date(2027, 6, 1)),
    s.audit(KEY, dt.date(2027, 1, 1), kind="follow_up", result="not_performed"),
    s.reaction(KEY, "AR-1", dt.date(2027, 1, 1)),
    s.approval(KEY, dt.date(2027, 1, 1)),
    s.bureau_changed(KEY, s.SECOND_BUREAU, dt.date(2027, 1, 1)),
]


@pytest.mark.parametrize("document", SAMPLES, ids=lambda d: d["type"])
def test_samples_are_valid_for_both_the_schema_and_the_model(document: dict[str, Any]) -> None:
    assert VALIDATORS.first_violation(document["type"], document) is None
    INBOUND[document["type"]].model_validate(document["data"])


def _broken(document: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(document)
    target = broken
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return broken


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (SAMPLES[0], ["data", "nickname"]),
        (SAMPLES[0], ["data", "contact", "phone"]),
        (SAMPLES[1], ["data", "registration", "unit", "floor"]),
        (SAMPLES[3], ["data", "score"]),
    ],
)
def test_schema_and_model_both_accept_a_field_they_do_not_name_and_it_is_found(
    document: dict[str, Any], path: list[str]
) -> None:
    """Tolerant reading: a publisher may add an optional field before the worker knows it."""
    added = _broken(document, path, "added")
    assert VALIDATORS.first_violation(added["type"], added) is None
    INBOUND[added["type"]].model_validate(added["data"])
    assert VALIDATORS.unknown_fields(added["type"], added["data"]) == ["/" + "/".join(path)]
    assert VALIDATORS.unknown_fields(document["type"], document["data"]) == []


@pytest.mark.parametrize(
    ("document", "path", "value", "pointer"),
    [
        (SAMPLES[0], ["data", "iban"], KeyError, "/data"),
        (SAMPLES[0], ["data", "starter"], "yes", "/data/starter"),
        (SAMPLES[0], ["data", "registration", "service"], "coaching", "/data/registration/service"),
        (
            SAMPLES[0],
            ["data", "registration", "enterprise_number"],
            "12345",
            "/data/registration/enterprise_number",
        ),
        (SAMPLES[0], ["data", "contact", "language"], "es", "/data/contact/language"),
        (SAMPLES[0], ["data", "starter"], {"nickname": "x"}, "/data/starter"),  # a known name
        (SAMPLES[0], ["specversion"], "0.3", "/specversion"),
        (SAMPLES[2], ["data", "received_on"], "2027-02-30", "/data/received_on"),
        (SAMPLES[3], ["data", "follow_up_deadline"], "2027-06-01", "/data"),  # not conditional
        (SAMPLES[4], ["data", "follow_up_deadline"], KeyError, "/data"),  # conditional needs it
        (SAMPLES[3], ["data", "result"], "not_performed", "/data/kind"),  # only for follow_up
        (
            SAMPLES[1],
            ["data", "registration", "unit", "department_id"],
            KeyError,
            "/data/registration/unit",
        ),
    ],
)
def test_schema_and_model_both_reject(
    document: dict[str, Any], path: list[str], value: Any, pointer: str
) -> None:
    broken = _broken(document, path, value)
    violation = VALIDATORS.first_violation(broken["type"], broken)
    assert violation is not None
    assert violation.pointer == pointer
    if path[0] == "data":
        with pytest.raises(ValidationError):
            INBOUND[broken["type"]].model_validate(broken["data"])


def test_every_outbound_event_of_a_whole_life_validates_against_its_schema() -> None:
    life = Life()
    day = dt.date(2026, 3, 2)
    life.send(s.request(KEY), day)
    life.send(s.declaration(KEY, day), day)
    life.send(s.audit(KEY, day, result="conditional", follow_up_deadline=dt.date(2026, 9, 1)), day)
    life.send(s.approval(KEY, day), day)
    life.advance(dt.date(2026, 8, 20))
    life.send(s.audit(KEY, dt.date(2026, 8, 25), kind="follow_up"), dt.date(2026, 8, 26))
    life.send(s.audit(KEY, dt.date(2026, 8, 25), kind="follow_up"), dt.date(2026, 8, 26))
    life.advance(dt.date(2031, 1, 30))
    life.advance(dt.date(2031, 3, 2))
    life.send(s.request(s.key("1543301277")), day)
    assert {*life.types()} >= {
        "decision.request_accepted",
        "decision.registered_conditionally",
        "notice.follow_up_due",
        "decision.converted",
        "message.ignored",
        "notice.expiring",
        "decision.expired",
        "decision.refused",
    }
    for _id, type_name, body, _trace in envelopes.wrap(life.events, "cause-1", "urn:test", NOW):
        assert VALIDATORS.first_violation(type_name, json.loads(body)) is None, type_name


def test_event_ids_are_deterministic_per_cause() -> None:
    life = Life()
    life.send(s.request(KEY), dt.date(2027, 1, 1))
    once = envelopes.wrap(life.events, "msg-1", "urn:test", NOW)
    again = envelopes.wrap(life.events, "msg-1", "urn:test", NOW)
    other = envelopes.wrap(life.events, "msg-2", "urn:test", NOW)
    assert [e[0] for e in once] == [e[0] for e in again]
    assert [e[0] for e in once] != [e[0] for e in other]


@given(st.text(), st.integers(min_value=0, max_value=99), st.text())
def test_event_ids_are_the_uuid5_of_cause_index_and_type(
    cause: str, index: int, type_name: str
) -> None:
    # Ids already published must come out the same after an upgrade: the fast path is uuid5.
    expected = uuid.uuid5(envelope.NAMESPACE, f"{cause}|{index}|{type_name}")
    assert envelope.event_id(cause, index, type_name) == str(expected)


def test_the_asyncapi_document_names_every_message_and_refers_to_its_schema() -> None:
    from worker.contracts import asyncapi

    document = asyncapi.document()
    messages = document["components"]["messages"]
    named = {m["name"] for m in messages.values()}
    assert named >= set(INBOUND) | set(OUTBOUND)
    for message in messages.values():
        ref = message["payload"].get("schema", {}).get("$ref")
        if ref:
            assert (schemas.SCHEMA_DIR / "asyncapi" / ref).resolve().exists(), ref
    assert {c["address"] for c in document["channels"].values()} == {
        "kmo.inbound",
        "kmo.events",
        "kmo.dead-letter",
    }


# The fast validator and the authoritative one agree ----------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from worker import config  # noqa: E402
from worker.service import intake  # noqa: E402

ODD_VALUES = st.sampled_from(
    [
        None,
        "",
        "x",
        0,
        -1,
        1.5,
        True,
        [],
        {},
        ["activity"],
        "2027-02-30",
        "2026-13-01",
        "2027-02-28",
        "2026-03-02T09:15:00Z",
        "2026-13-02T09:15:00Z",
        "2026-12-31T23:59:60Z",
        "2026-03-02t09:15:00z",
        "x@[1.2.3.4]",
        "BE68539007547034",
        "0403.170.701",
        "12345",
        "training",
        "conditional",
        "follow_up",
        "not_performed",
        {"kind": "department"},
        {"kind": "registered_office"},
        "a@b",
        "nl",
        "es",
    ]
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=400, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES),
    mutations=st.lists(st.tuples(st.integers(0, 10_000), ODD_VALUES, st.booleans()), max_size=3),
)
def test_intake_accepts_exactly_what_the_authoritative_validator_accepts(
    sample: dict[str, Any], mutations: list[tuple[int, Any, bool]]
) -> None:
    document = copy.deepcopy(sample)
    for index, value, delete in mutations:
        paths = _paths(document)
        path = paths[index % len(paths)]
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        if delete and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(value)  # the pool's lists and dicts stay as they are
    if not isinstance(document.get("type"), str) or document["type"] != sample["type"]:
        return  # a changed type is another check (unknown_type)
    body = json.dumps(document).encode()
    verdict = intake.check(body, {}, VALIDATORS, config.Settings())
    authoritative = VALIDATORS.first_violation(sample["type"], json.loads(body))
    assert isinstance(verdict, intake.Accepted) == (authoritative is None), (
        document,
        authoritative,
    )
    if authoritative is not None:
        assert isinstance(verdict, intake.Rejected) and verdict.error == str(authoritative)


def test_every_event_names_the_version_of_its_contract_by_its_schema_files_id() -> None:
    life = Life()
    life.send(s.request(s.key("1543301276")), dt.date(2027, 2, 1))
    for _id, type_name, body, _trace in envelopes.wrap(life.events, "cause-1", "urn:test", NOW):
        dataschema = json.loads(body)["dataschema"]
        on_file = json.loads((schemas.SCHEMA_DIR / f"{type_name}.json").read_text())
        assert dataschema == on_file["$id"] == f"urn:kmo:schema:{type_name}:1.0"
        assert on_file["x-kmo-version"] == "1.0"
