"""`find`, `explain` and the preview of an act, on a SQLite store in memory: the same queries
as on PostgreSQL, the same pure core as the worker."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.unit import memory
from worker import samples as s
from worker.adapters.store import port
from worker.bootstrap import App
from worker.service import cases, unit_of_work

D = dt.date
W = port.Window
CONDITIONAL = ["0326541491", "0746043430", "1662403915"]  # follow-up by 03-01, 04-01, 05-01
REGISTERED = ["1543301276", "0995127057"]


def _handle(app: App, documents: list[dict[str, object]]) -> None:
    messages = [memory.accepted(d, publisher="tester") for d in documents]
    unit_of_work.handle_messages(app.store, app.envelopes, messages, app.context(), memory.NOW)


@pytest.fixture
def app(tmp_path: Path) -> App:
    built = memory.app(tmp_path)
    day = memory.TODAY
    for number in REGISTERED:
        _handle(built, [d for m in memory.life(number) for d in [_document(m)]])
    for month, number in enumerate(CONDITIONAL, start=3):
        key = s.key(number, service="advice")
        deadline = D(2027, month, 1)
        _handle(
            built,
            [
                s.request(key),
                s.declaration(key, day),
                s.audit(key, day, result="conditional", follow_up_deadline=deadline),
                s.approval(key, day),
            ],
        )
    return built


def _document(accepted: object) -> dict[str, object]:
    return json.loads(accepted.body)  # type: ignore[attr-defined,no-any-return]


def _numbers(found: list[port.Found]) -> list[str]:
    return [f.stored.registration.key.enterprise_number for f in found]


def test_find_filters_by_state_service_and_a_deadline_in_its_order(app: App) -> None:
    by_state = app.store.search(port.CaseQuery(states=("registered_conditionally",)))
    assert sorted(_numbers(by_state)) == sorted(CONDITIONAL)
    by_deadline = app.store.search(
        port.CaseQuery(windows={"follow_up_deadline": W(before=D(2027, 4, 1))})
    )
    assert _numbers(by_deadline) == CONDITIONAL[:2]  # in the deadline's order
    training = app.store.search(port.CaseQuery(service="training"))
    assert sorted(_numbers(training)) == sorted(REGISTERED)
    assert app.store.search(port.CaseQuery(bureau=s.APPOINTED_BUREAU, cycle=2)) == []


def test_find_pages_with_the_cursor_of_the_last_row(app: App) -> None:
    query = port.CaseQuery(windows={"follow_up_deadline": W(after=D(2027, 1, 1))}, limit=1)
    seen = []
    while True:
        page = app.store.search(query)
        seen += _numbers(page[:1])
        if len(page) <= 1:
            break
        query = port.CaseQuery(windows=query.windows, limit=1, after=page[0].cursor)
    assert seen == CONDITIONAL


def test_find_by_the_next_timer_due(app: App) -> None:
    # The first: its notice fell before its state began (R9), so the stop on 03-02 comes first;
    # the second: its notice 30 days before 04-01, on 03-02 as well.
    found = app.store.search(port.CaseQuery(windows={"next_due": W(before=D(2027, 3, 5))}))
    assert _numbers(found) == CONDITIONAL[:2]
    assert [f.next_due for f in found] == [D(2027, 3, 2), D(2027, 3, 2)]
    later = app.store.search(port.CaseQuery(windows={"next_due": W(after=D(2027, 3, 3))}))
    assert _numbers(later)[0] == CONDITIONAL[2]


def test_explain_tells_each_change_its_rule_and_what_comes_next(app: App) -> None:
    (stored,) = app.store.find(CONDITIONAL[0])
    story = cases.explain(app.store, stored, memory.TODAY)
    assert [c["rule"] for c in story["changes"]] == ["eligibility", "R2", "R3", "R3"]
    approval = story["changes"][-1]
    assert approval["to_state"] == "registered_conditionally"
    assert approval["cause"]["reference"] == "MB-2027-0042"
    assert approval["cause"]["publisher"] == "tester"
    assert "goedkeuring door de minister" in approval["procedure"]
    assert approval["events"][0]["type"] == "decision.registered_conditionally"
    first = story["next"][0]  # its notice would have been due before the state began (R9)
    assert (first["kind"], first["deadline"], first["rule"]) == (
        "deadline.follow_up",
        "2027-03-01",
        "R5",
    )
    assert first["in_days"] == 29
    assert len(story["messages"]) == 4 and story["ignored"] == []


def test_explain_lists_ignored_messages_with_their_reason(app: App) -> None:
    key = s.key(REGISTERED[0])
    _handle(app, [s.declaration(key, memory.TODAY)])
    (stored,) = app.store.find(REGISTERED[0])
    story = cases.explain(app.store, stored, memory.TODAY)
    assert [m["reason"] for m in story["ignored"]] == ["declaration_not_awaited"]
    assert all(c["rule"] != "R11" for c in story["changes"])


def test_the_preview_of_an_act_is_the_decision_and_writes_nothing(app: App) -> None:
    (stored,) = app.store.find(CONDITIONAL[0])
    key = s.key(CONDITIONAL[0], service="advice")
    act = memory.accepted(s.deadline_extension(key, "follow_up", D(2027, 6, 1)))
    shown = cases.preview(app.store, stored, act, app.context())
    assert shown.rule == "R16"
    assert [e["type"] for e in shown.events] == ["decision.deadline_extended"]
    assert {t.deadline for t in shown.timers_added} == {D(2027, 6, 1)}
    assert {t.deadline for t in shown.timers_cancelled} == {D(2027, 3, 1)}
    (again,) = app.store.find(CONDITIONAL[0])
    assert again == stored


def test_a_dead_letter_is_recorded_beside_the_registration_it_names(app: App) -> None:
    (stored,) = app.store.find(REGISTERED[0])
    app.store.record_dead_letter(
        {
            "message_id": "m-1",
            "type": "audit.reported",
            "reason": "schema_violation",
            "error": "bad",
            "enterprise_number": REGISTERED[0],
            "service": "training",
            "dead_lettered_at": memory.NOW,
        }
    )
    story = cases.explain(app.store, stored, memory.TODAY)
    assert [d["message_id"] for d in story["dead_letters"]] == ["m-1"]
