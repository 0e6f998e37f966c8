"""The outbound side on a SQLite store in memory, with a sender that stands in for the broker:
what it publishes, what the broker's confirms and refusals do to the marks, and the relay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from amqp.exceptions import MessageNacked
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from tests.unit import memory
from worker.adapters import confirms
from worker.adapters.store import tables as t
from worker.bootstrap import App
from worker.consumer import outbound
from worker.contracts.envelope import Outgoing

EVENTS = [Outgoing(f"e{i}", "decision.registered", "{}") for i in range(3)]


def _side(app: App) -> tuple[outbound.Outbound, confirms.MemorySender, list[str]]:
    away: list[str] = []
    side = outbound.Outbound(
        app.store, app.clock, app.capabilities, 1.0, lambda event, _error: away.append(event)
    )
    sender = confirms.MemorySender()
    side.use(sender)
    return side, sender, away


def _stored(app: App, events: list[Outgoing], created_at: dt.datetime = memory.NOW) -> None:
    rows = [
        {"event_id": e.id, "type": e.type, "body": e.body, "created_at": created_at} for e in events
    ]
    with app.store.engine.begin() as db:
        db.execute(insert(t.outbox), rows)


def _marked(app: App) -> list[str]:
    with app.store.engine.connect() as db:
        query = select(t.outbox.c.event_id).where(t.outbox.c.sent_at.is_not(None))
        return sorted(db.execute(query).scalars())


def test_confirmed_events_are_marked_with_the_next_transaction(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    _stored(app, EVENTS)
    side, sender, _away = _side(app)
    side.send(EVENTS[:2])
    assert sender.sent == EVENTS[:2]
    assert _marked(app) == []  # published, not yet known to be sent
    side.collect()
    with app.store.transaction() as tx:
        side.ride_along(tx)
    assert _marked(app) == ["e0", "e1"]
    side.mark_sent()  # nothing left to mark: no transaction, nothing changes
    assert _marked(app) == ["e0", "e1"]


def test_refused_events_are_never_marked(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    _stored(app, EVENTS)
    side, sender, _away = _side(app)
    sender.refuse = True
    side.send(EVENTS)
    with pytest.raises(MessageNacked):
        side.collect()
    side.mark_sent()
    assert _marked(app) == []  # left for the relay, which publishes them again


def test_marks_survive_the_database_being_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = memory.app(tmp_path)
    _stored(app, EVENTS)
    side, _sender, away = _side(app)
    side.send(EVENTS)
    side.collect()

    def unavailable(**_kw: object) -> object:
        raise OperationalError("BEGIN", {}, ConnectionError("gone"))

    with monkeypatch.context() as patched:
        patched.setattr(app.store, "transaction", unavailable)
        side.mark_sent()
    assert away == ["relay_mark_failed"]
    side.mark_sent()
    assert _marked(app) == ["e0", "e1", "e2"]


def test_a_session_that_ends_keeps_what_the_broker_confirmed(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    _stored(app, EVENTS)
    side, _sender, _away = _side(app)
    side.send(EVENTS[:1])
    side.close()  # the broker went away after confirming e0
    with pytest.raises(ConnectionError):
        side.send(EVENTS[1:])  # no session: the events stay in the outbox
    side.mark_sent()
    assert _marked(app) == ["e0"]


def test_the_relay_publishes_only_events_old_enough_to_be_left_over(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    old = memory.NOW - outbound.LEFT_OVER_AFTER - dt.timedelta(seconds=1)
    _stored(app, EVENTS[:2], created_at=old)
    _stored(app, EVENTS[2:])  # a live replica is sending this one right now
    side, sender, _away = _side(app)
    assert side.flush() == 2
    assert sender.sent == EVENTS[:2]
    assert _marked(app) == ["e0", "e1"]
    assert side.flush() == 0


def test_finishing_waits_marks_and_relays(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    old = memory.NOW - outbound.LEFT_OVER_AFTER - dt.timedelta(seconds=1)
    _stored(app, EVENTS[:1], created_at=old)
    _stored(app, EVENTS[1:])
    side, sender, _away = _side(app)
    side.send(EVENTS[1:])
    side.finish()
    assert _marked(app) == ["e0", "e1", "e2"]
    assert sorted(e.id for e in sender.sent) == ["e0", "e1", "e2"]


def test_marks_wait_for_a_batch_to_take_them_along_before_they_go_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = memory.app(tmp_path)
    _stored(app, EVENTS)
    side, _sender, _away = _side(app)
    side.send(EVENTS[:1])
    side.collect()
    side.mark_overdue()
    assert _marked(app) == []  # fresh: the next batch takes it along
    monkeypatch.setattr(outbound, "MARK_WITHIN_SECONDS", 0.0)
    side.mark_overdue()
    assert _marked(app) == ["e0"]


def test_while_the_broker_blocks_publishing_events_wait_in_the_outbox_for_the_relay(
    tmp_path: Path,
) -> None:
    app = memory.app(tmp_path)
    old = memory.NOW - outbound.LEFT_OVER_AFTER * 2
    _stored(app, EVENTS, created_at=old)
    side, sender, _away = _side(app)
    side.block("low on memory")
    side.send(EVENTS[:1])  # committed by a batch: not published while blocked
    side.wait_for_confirms()  # does not wait for the broker
    assert side.flush() == 0  # nor does the relay publish
    assert sender.sent == [] and _marked(app) == []
    side.unblock()
    assert side.flush() == 3  # once unblocked, the relay sends what waited
    assert _marked(app) == ["e0", "e1", "e2"]


def test_a_blocked_connection_owes_no_overdue_confirm() -> None:
    """Sent before the block, unconfirmed during it: not a timeout; the clock restarts after."""
    sender = confirms.ConfirmedSender.__new__(confirms.ConfirmedSender)
    sender.timeout, sender._held, sender._refused = 0.0, False, False
    sender._waiting = {1: (EVENTS[0], 0.0)}
    sender._confirmed = []
    sender.connection = None  # type: ignore[assignment]
    sender.hold()
    assert sender._overdue() is None
    sender.resume()
    assert sender._waiting[1][1] > 0.0  # restamped now
    sender.timeout = -1.0
    assert sender._overdue() is not None
