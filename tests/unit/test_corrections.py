"""R17 through the unit of work on a SQLite store in memory: a retraction reads the stored life,
writes the correction with its timers and history, and one `decision.corrected`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select, update

from tests.unit import memory
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import App
from worker.contracts.envelope import event_id
from worker.entrypoints import explain
from worker.service import cases, unit_of_work

D = dt.date
PEETERS = "1543301276"
KEY = s.key(PEETERS)


def handle(app: App, day: dt.date, *documents: dict[str, object]) -> unit_of_work.Committed:
    ctx = dataclasses.replace(app.context(), today=day)
    messages = [memory.accepted(document) for document in documents]
    return unit_of_work.handle_messages(app.store, app.envelopes, messages, ctx, memory.NOW)


def failed(app: App) -> dict[str, object]:
    handle(app, D(2027, 1, 4), s.request(KEY), s.declaration(KEY, D(2027, 1, 4)))
    report = s.audit(KEY, D(2027, 1, 10), result="failed", report_id="AR-1")
    handle(app, D(2027, 1, 11), report)
    return report


def unfired(app: App) -> list[str]:
    with app.store.engine.connect() as db:
        query = select(t.timers.c.kind).where(t.timers.c.fired_at.is_(None))
        return sorted(db.execute(query).scalars())


def test_a_retraction_corrects_state_timers_and_history_and_tells_the_mailers_once(
    tmp_path: Path,
) -> None:
    app = memory.app(tmp_path)
    report = failed(app)
    assert unfired(app) == ["deadline.reaction", "notice.reaction_due"]

    committed = handle(app, D(2027, 2, 1), s.retraction(KEY, str(report["id"])))

    assert [r.outcome for r in committed.results] == ["handled"]
    (event,) = committed.events
    assert event.type == "decision.corrected"
    data = json.loads(event.body)["data"]
    assert (data["previous_state"], data["state"]) == ("audit_failed", "requested")
    assert data["superseded"] == [event_id(str(report["id"]), 0, "decision.audit_failed")]
    (stored,) = app.store.find(PEETERS)
    assert stored.registration.state == "requested"
    assert stored.registration.reaction_deadline is None
    assert unfired(app) == []  # the reaction deadline and its notice are gone
    last = app.store.history_of(stored.id)[-1]
    assert (last["rule"], last["from_state"], last["to_state"]) == (
        "R17",
        "audit_failed",
        "requested",
    )
    assert last["cause_type"] == "message.retracted"
    assert last["reason"] == "The report was filed for the wrong provider."


def test_a_retraction_sees_the_messages_of_its_own_batch(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    handle(app, D(2027, 1, 4), s.request(KEY), s.declaration(KEY, D(2027, 1, 4)))
    report = s.audit(KEY, D(2027, 1, 10), result="failed", report_id="AR-1")
    committed = handle(app, D(2027, 1, 11), report, s.retraction(KEY, str(report["id"])))
    assert [e.type for e in committed.events] == ["decision.audit_failed", "decision.corrected"]
    (stored,) = app.store.find(PEETERS)
    assert stored.registration.state == "requested"
    assert unfired(app) == []


def test_a_life_whose_archived_body_was_cleared_cannot_be_replayed(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    report = failed(app)
    with app.store.engine.begin() as db:
        db.execute(update(t.inbox).values(body=None))
    committed = handle(app, D(2027, 2, 1), s.retraction(KEY, str(report["id"])))
    (event,) = committed.events
    assert event.type == "message.ignored"
    assert json.loads(event.body)["data"]["reason"] == "archive_incomplete"
    (stored,) = app.store.find(PEETERS)
    assert stored.registration.state == "audit_failed"


def test_a_message_of_another_registration_is_not_retracted_here(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    failed(app)
    other = s.key("0417497106")
    elsewhere = s.declaration(other, D(2027, 1, 4))
    handle(app, D(2027, 1, 4), s.request(other), elsewhere)
    committed = handle(app, D(2027, 2, 1), s.retraction(KEY, str(elsewhere["id"])))
    (event,) = committed.events
    assert json.loads(event.body)["data"]["reason"] == "other_registration"


def test_explain_shows_the_correction_what_it_took_back_and_what_it_superseded(
    tmp_path: Path,
) -> None:
    app = memory.app(tmp_path)
    report = failed(app)
    retraction = s.retraction(KEY, str(report["id"]))
    handle(app, D(2027, 2, 1), retraction)
    (stored,) = app.store.find(PEETERS)
    story = cases.explain(app.store, stored, D(2027, 2, 1))

    correction = story["changes"][-1]
    assert correction["rule"] == "R17" and correction["cause"]["id"] == retraction["id"]
    assert correction["retracted_id"] == report["id"]
    failed_decision = event_id(str(report["id"]), 0, "decision.audit_failed")
    assert correction["superseded"] == [failed_decision]
    (failing,) = [c for c in story["changes"] if c["cause"].get("id") == report["id"]]
    assert failing["events"][0]["superseded_by"] == retraction["id"]
    (taken_back,) = [m for m in story["messages"] if m["message_id"] == report["id"]]
    assert taken_back["retracted_by"] == retraction["id"]
    assert all("body" not in m for m in story["messages"])
    text = explain.render(story)
    assert f"took back: {report['id']}" in text and f"supersedes: {failed_decision}" in text
