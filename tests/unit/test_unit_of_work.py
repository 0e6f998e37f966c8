"""The unit of work on a SQLite store in memory: one transaction per batch, in order."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tests.unit import memory
from worker import samples
from worker.adapters.store import port
from worker.adapters.store import tables as t
from worker.bootstrap import App
from worker.service import unit_of_work

PEETERS = "1543301276"


def _handle(app: App, messages: list[object], **kw: object) -> unit_of_work.Committed:
    return unit_of_work.handle_messages(
        app.store,
        app.envelopes,
        messages,  # type: ignore[arg-type]
        app.context(),
        memory.NOW,
        **kw,  # type: ignore[arg-type]
    )


def _count(app: App, table: object) -> int:
    with app.store.engine.connect() as db:
        return int(db.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_messages_of_one_batch_see_each_other_and_commit_together(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    committed = _handle(app, memory.life(PEETERS))
    assert [r.outcome for r in committed.results] == ["handled"] * 3
    assert [e.type for e in committed.events] == [
        "decision.request_accepted",
        "decision.registered",
    ]
    (stored,) = app.store.find(PEETERS)
    assert stored.registration.state == "registered"
    assert stored.registration.number == "DV.O000001"
    assert [h["to_state"] for h in app.store.history_of(stored.id)] == [
        "requested",
        "requested",
        "registered",
    ]
    assert _count(app, t.inbox) == 3
    assert _count(app, t.outbox) == 2
    with app.store.engine.connect() as db:
        kinds = Counter(db.execute(select(t.timers.c.kind)).scalars())
    assert kinds == {"deadline.period_end": 1, "notice.expiring": 2}


def test_a_message_seen_before_is_a_duplicate_in_the_batch_and_after_it(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    request = memory.accepted(samples.request(samples.key(PEETERS)))
    first = _handle(app, [request, request])
    assert [r.outcome for r in first.results] == ["handled", "duplicate"]
    again = _handle(app, [request])
    assert [r.outcome for r in again.results] == ["duplicate"]
    assert again.events == []
    assert _count(app, t.registrations) == 1


def test_new_registrations_of_one_batch_get_their_own_numbers_and_ids(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    numbers = ["1543301276", "0995127057", "0326541491"]
    _handle(app, [memory.accepted(samples.request(samples.key(n))) for n in numbers])
    _handle(app, [memory.accepted(samples.request(samples.key("1662403915")))])
    stored = [s for n in [*numbers, "1662403915"] for s in app.store.find(n)]
    assert sorted(s.registration.number for s in stored) == [
        "DV.O000001",
        "DV.O000002",
        "DV.O000003",
        "DV.O000004",
    ]
    assert len({s.id for s in stored}) == 4


def test_a_participant_writes_with_the_batch_and_is_told_when_it_rolls_back(
    tmp_path: Path,
) -> None:
    app = memory.app(tmp_path)
    _handle(app, memory.life(PEETERS)[:1])
    undone: list[str] = []

    def meddle(tx: port.Transaction) -> None:
        # Another writer changed the registration since the batch read it.
        tx.db.execute(text("UPDATE registrations SET version = version + 1"))  # type: ignore[attr-defined]
        tx.on_rollback(lambda: undone.append("marks"))

    declaration = memory.life(PEETERS)[1]
    with pytest.raises(port.StaleRegistrationError):
        _handle(app, [declaration], join=meddle)
    assert undone == ["marks"]
    (stored,) = app.store.find(PEETERS)
    assert stored.version == 1 and stored.registration.declaration_on is None  # nothing kept
    assert _count(app, t.inbox) == 1  # the declaration is not remembered: it may come again
    assert _handle(app, [declaration]).results[0].outcome == "handled"
