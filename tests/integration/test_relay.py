"""The relay on PostgreSQL: what it takes as left over, and marking what was sent."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select

from tests.support import message
from worker import config, samples
from worker.adapters import confirms
from worker.adapters.store import port
from worker.adapters.store import tables as t
from worker.bootstrap import App, bootstrap
from worker.consumer import outbound
from worker.contracts.envelope import Outgoing
from worker.domain.model import Context
from worker.service import intake, unit_of_work
from worker.service.clock import Clock

pytestmark = pytest.mark.integration
NOW = dt.datetime(2027, 2, 1, 9, 0, tzinfo=dt.UTC)


class At(Clock):
    def now(self) -> dt.datetime:
        return NOW


def _sent_at(app: App, event_id: str) -> dt.datetime | None:
    with app.store.engine.connect() as db:
        query = select(t.outbox.c.sent_at).where(t.outbox.c.event_id == event_id)
        return db.execute(query).scalar_one()  # type: ignore[no-any-return]


def _enqueue(app: App, events: list[Outgoing], created_at: dt.datetime) -> None:
    rows = [
        {"event_id": e.id, "type": e.type, "body": e.body, "created_at": created_at} for e in events
    ]
    with app.store.engine.begin() as db:
        db.execute(insert(t.outbox), rows)


def _outbound(app: App) -> tuple[outbound.Outbound, confirms.MemorySender]:
    side = outbound.Outbound(app.store, At(), app.capabilities, 1.0, lambda _e, error: None)
    sender = confirms.MemorySender()
    side.use(sender)
    return side, sender


def _confirmed_earlier(app: App) -> outbound.Outbound:
    """An event in the outbox that the broker has confirmed: it waits for a transaction."""
    earlier = Outgoing("earlier", "decision.registered", "{}")
    _enqueue(app, [earlier], NOW)
    side, _sender = _outbound(app)
    side.send([earlier])
    side.collect()
    return side


def test_flush_takes_only_events_nobody_is_sending_any_more(settings: config.Settings) -> None:
    app = bootstrap(settings)
    old = Outgoing("old", "decision.registered", "{}")
    fresh = Outgoing("fresh", "decision.registered", "{}")
    _enqueue(app, [old], NOW - outbound.LEFT_OVER_AFTER - dt.timedelta(seconds=1))
    _enqueue(app, [fresh], NOW)  # a live consumer is publishing this one right now
    side, sender = _outbound(app)
    assert side.flush() == 1
    assert sender.sent == [old]
    assert _sent_at(app, "old") is not None
    assert _sent_at(app, "fresh") is None
    app.store.dispose()


def test_marks_go_on_their_own_and_the_first_mark_stands(settings: config.Settings) -> None:
    app = bootstrap(settings)
    events = [Outgoing(f"e{i}", "decision.registered", "{}") for i in range(3)]
    _enqueue(app, events, NOW)
    with app.store.transaction(durable=False) as tx:
        tx.mark_sent(["e0", "e1"], NOW)
    assert [_sent_at(app, f"e{i}") is not None for i in range(3)] == [True, True, False]
    with app.store.transaction(durable=False) as tx:
        tx.mark_sent(["e1", "e2"], NOW + dt.timedelta(seconds=1))  # e1 again: kept
    assert _sent_at(app, "e1") == NOW
    assert _sent_at(app, "e2") == NOW + dt.timedelta(seconds=1)
    app.store.dispose()


def test_a_batch_marks_what_was_sent_in_its_own_transaction(settings: config.Settings) -> None:
    app = bootstrap(settings)
    side = _confirmed_earlier(app)  # confirmed: waits for a transaction to mark it
    document = samples.request(samples.key("0403170701"))
    parsed = message(document)
    accepted = intake.Accepted(parsed.id, document["type"], parsed.data)
    committed = unit_of_work.handle_messages(
        app.store, app.envelopes, [accepted], Context(today=NOW.date()), NOW, side.ride_along
    )
    assert [event.type for event in committed.events] == ["decision.request_accepted"]
    assert _sent_at(app, "earlier") == NOW
    assert _sent_at(app, committed.events[0].id) is None  # not published yet
    app.store.dispose()


def test_marks_that_rode_a_transaction_that_failed_come_back(settings: config.Settings) -> None:
    app = bootstrap(settings)
    side = _confirmed_earlier(app)

    def fails() -> None:
        with app.store.transaction() as tx:
            side.ride_along(tx)
            raise port.StaleRegistrationError("DV.O000001")

    with pytest.raises(port.StaleRegistrationError):
        fails()
    assert _sent_at(app, "earlier") is None
    side.mark_sent()  # given back: marked on their own
    assert _sent_at(app, "earlier") == NOW
    app.store.dispose()
