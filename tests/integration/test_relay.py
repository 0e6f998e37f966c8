"""The relay on PostgreSQL: what it takes as left over, and marking what was sent."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.support import message
from worker import config, samples
from worker.adapters import outbox
from worker.adapters import tables as t
from worker.bootstrap import bootstrap
from worker.contracts.envelope import Outgoing
from worker.domain.model import Context
from worker.service import handling, intake, relay

pytestmark = pytest.mark.integration
NOW = dt.datetime(2027, 2, 1, 9, 0, tzinfo=dt.UTC)


def _sent_at(app_engine: object, event_id: str) -> dt.datetime | None:
    with app_engine.connect() as db:  # type: ignore[attr-defined]
        query = select(t.outbox.c.sent_at).where(t.outbox.c.event_id == event_id)
        return db.execute(query).scalar_one()  # type: ignore[no-any-return]


def test_flush_takes_only_events_nobody_is_sending_any_more(settings: config.Settings) -> None:
    app = bootstrap(settings)
    old = Outgoing("old", "decision.registered", "{}")
    fresh = Outgoing("fresh", "decision.registered", "{}")
    with app.engine.begin() as db:
        outbox.enqueue(db, [old], NOW - relay.LEFT_OVER_AFTER - dt.timedelta(seconds=1))
        outbox.enqueue(db, [fresh], NOW)  # a live consumer is publishing this one right now
    published: list[Outgoing] = []
    assert relay.flush(app.engine, published.extend, lambda: NOW) == 1
    assert published == [old]
    assert _sent_at(app.engine, "old") is not None
    assert _sent_at(app.engine, "fresh") is None
    app.engine.dispose()


def test_marks_go_with_the_next_batch_or_on_their_own(settings: config.Settings) -> None:
    app = bootstrap(settings)
    events = [Outgoing(f"e{i}", "decision.registered", "{}") for i in range(3)]
    with app.engine.begin() as db:
        outbox.enqueue(db, events, NOW)
    relay.mark_sent(app.engine, ["e0", "e1"], NOW)
    assert [_sent_at(app.engine, f"e{i}") is not None for i in range(3)] == [True, True, False]
    relay.mark_sent(app.engine, ["e1", "e2"], NOW + dt.timedelta(seconds=1))  # e1 again: kept
    assert _sent_at(app.engine, "e1") == NOW
    assert _sent_at(app.engine, "e2") == NOW + dt.timedelta(seconds=1)
    app.engine.dispose()


def test_a_batch_marks_what_was_sent_in_its_own_transaction(settings: config.Settings) -> None:
    app = bootstrap(settings)
    with app.engine.begin() as db:
        outbox.enqueue(db, [Outgoing("earlier", "decision.registered", "{}")], NOW)
    document = samples.request(samples.key("0403170701"))
    parsed = message(document)
    accepted = intake.Accepted(parsed.id, document["type"], parsed.data)
    committed = handling.handle_batch(
        app.shell, [accepted], Context(today=NOW.date()), NOW, sent=["earlier"]
    )
    assert [event.type for event in committed.events] == ["decision.request_accepted"]
    assert _sent_at(app.engine, "earlier") == NOW
    assert _sent_at(app.engine, committed.events[0].id) is None  # not published yet
    app.engine.dispose()
