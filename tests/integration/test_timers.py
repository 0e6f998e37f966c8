"""Durable timers on PostgreSQL: set on entering a state, fired once even by several sweeps."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter

import pytest
from sqlalchemy import Text, cast, func, select, update

from tests.support import message
from worker import config
from worker import samples as s
from worker.adapters.store import documents, port
from worker.adapters.store import tables as t
from worker.bootstrap import bootstrap
from worker.consumer import sweep
from worker.domain.model import Context, NoticeOffsets
from worker.service import intake, unit_of_work
from worker.service.clock import Clock
from worker.service.envelopes import Envelopes

pytestmark = pytest.mark.integration
D = dt.date
PROVIDERS = [f"{n:08d}{97 - n % 97:02d}" for n in range(10_000_000, 10_000_060)]


def _register_all(store: port.Store, envelopes: Envelopes, today: D) -> None:
    ctx = Context(today=today)
    now = dt.datetime(2027, 2, 1, tzinfo=dt.UTC)
    for number in PROVIDERS:
        key = s.key(number)
        for document in (s.request(key), s.declaration(key, today), s.audit(key, today)):
            parsed = message(document)
            accepted = intake.Accepted(parsed.id, document["type"], parsed.data)
            unit_of_work.handle_messages(store, envelopes, [accepted], ctx, now)


def test_entering_a_state_sets_its_timers_and_leaving_it_cancels_them(
    settings: config.Settings,
) -> None:
    app = bootstrap(settings)
    _register_all(app.store, app.envelopes, D(2027, 2, 1))
    with app.store.engine.connect() as db:
        kinds = Counter(
            db.execute(select(t.timers.c.kind).where(t.timers.c.fired_at.is_(None))).scalars()
        )
    # registered: the end of the period, and notices 90 and 30 days before it
    assert kinds == {"deadline.period_end": 60, "notice.expiring": 120}
    app.store.engine.dispose()


def test_two_sweeps_at_once_fire_every_timer_exactly_once(
    settings: config.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "BATCH", 7)  # small batches, so the two sweeps contend
    app = bootstrap(settings)
    _register_all(app.store, app.envelopes, D(2027, 2, 1))
    end = D(2032, 1, 31)
    ctx = Context(today=end + dt.timedelta(days=1), offsets=NoticeOffsets())
    fired: list[int] = []
    barrier = threading.Barrier(2)

    def sweeper() -> None:
        barrier.wait()
        fired.append(sweep.sweep(app.store, app.envelopes, ctx, Clock(ctx.today)))

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with app.store.engine.connect() as db:
        types = Counter(db.execute(select(t.outbox.c.type)).scalars())
        pending = db.execute(
            select(func.count()).select_from(t.timers).where(t.timers.c.fired_at.is_(None))
        ).scalar_one()
        states = Counter(db.execute(select(t.registrations.c.state)).scalars())
    assert sum(fired) == 180  # 60 ends + 120 notices (too late to send now, but fired)
    assert min(fired) > 0, f"one sweep did all the work: {fired}"
    assert types["decision.expired"] == 60
    assert types["notice.expiring"] == 0  # their day has passed with the period itself
    assert pending == 0
    assert states == {"expired": 60}
    app.store.engine.dispose()


def test_an_empty_sweep_fires_nothing(settings: config.Settings) -> None:
    app = bootstrap(settings)
    _register_all(app.store, app.envelopes, D(2027, 2, 1))
    assert (
        sweep.sweep(app.store, app.envelopes, Context(today=D(2027, 3, 1)), Clock(D(2027, 3, 1)))
        == 0
    )
    app.store.engine.dispose()


def test_one_sweep_in_parallel_transactions_fires_every_timer_once_and_reports_on_its_thread(
    settings: config.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "BATCH", 7)
    app = bootstrap(settings)
    _register_all(app.store, app.envelopes, D(2027, 2, 1))
    ctx = Context(today=D(2032, 2, 1), offsets=NoticeOffsets())
    firing_threads: set[str] = set()
    real_fire_batch = unit_of_work.fire_timers

    def fire_batch(*args: object, **kwargs: object) -> unit_of_work.Committed:
        firing_threads.add(threading.current_thread().name)
        return real_fire_batch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(unit_of_work, "fire_timers", fire_batch)
    caller = threading.get_ident()
    sent: list[str] = []
    reported: list[int] = []

    def send(events: list[object]) -> None:
        assert threading.get_ident() == caller
        sent.extend(event.id for event in events)  # type: ignore[attr-defined]

    def on_fired(due: object, _handled: object) -> None:
        assert threading.get_ident() == caller
        reported.append(due.id)  # type: ignore[attr-defined]

    fired = sweep.sweep(app.store, app.envelopes, ctx, Clock(ctx.today), on_fired, send, workers=3)
    with app.store.engine.connect() as db:
        expired = t.outbox.c.type == "decision.expired"  # what the sweep made
        stored = list(db.execute(select(t.outbox.c.event_id).where(expired)).scalars())
        pending = db.execute(
            select(func.count()).select_from(t.timers).where(t.timers.c.fired_at.is_(None))
        ).scalar_one()
    assert fired == 180 and pending == 0
    assert sorted(reported) == sorted(set(reported)) and len(reported) == 180
    assert sorted(sent) == sorted(stored) and len(sent) == len(set(sent)) == 60
    assert len(firing_threads - {threading.current_thread().name}) >= 2, firing_threads
    app.store.engine.dispose()


def test_a_sweep_skips_a_registration_a_consumer_holds_and_fires_it_later(
    settings: config.Settings,
) -> None:
    app = bootstrap(settings)
    _register_all(app.store, app.envelopes, D(2027, 2, 1))
    ctx = Context(today=D(2032, 2, 1), offsets=NoticeOffsets())
    with app.store.engine.connect() as held:  # a consumer in the middle of its transaction
        held.execute(
            select(t.registrations.c.id).where(t.registrations.c.id == 1).with_for_update()
        )
        started = dt.datetime.now()
        fired = sweep.sweep(app.store, app.envelopes, ctx, Clock(ctx.today))
        waited = dt.datetime.now() - started
        held.rollback()
    assert fired == 177  # everything but the held registration's three timers
    assert waited < dt.timedelta(seconds=5)  # skipped, not waited for
    assert sweep.sweep(app.store, app.envelopes, ctx, Clock(ctx.today)) == 3
    app.store.engine.dispose()


def test_a_claim_holds_no_timer_of_a_registration_it_skipped(settings: config.Settings) -> None:
    """The consumer that holds registration 1 can still change its timers while a sweep's
    claim, which skipped it, is open: the claim locked none of them. (A claim that locked timers
    and registrations in one statement kept the timers' locks, and two sweeps that expired each
    other's registrations deadlocked, #20.)"""
    from sqlalchemy.exc import OperationalError

    app = bootstrap(settings)
    _register_all(app.store, app.envelopes, D(2027, 2, 1))
    timers = t.timers.c
    with app.store.engine.connect() as held:
        held.execute(
            select(t.registrations.c.id).where(t.registrations.c.id == 1).with_for_update()
        )
        with app.store.transaction() as tx:
            claimed = tx.claim_due(D(2032, 2, 1), 500)
            assert len(claimed.dues) == 177 and 1 not in claimed.registrations
            try:
                mine = held.execute(
                    select(timers.id)
                    .where(timers.registration_id == 1)
                    .with_for_update(nowait=True)
                ).all()
            except OperationalError as error:
                pytest.fail(f"the claim holds a timer of a registration it skipped: {error}")
            assert len(mine) == 3
        held.rollback()
    app.store.engine.dispose()


def test_a_claimed_registration_of_an_older_document_version_is_upcast(
    settings: config.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep reads registrations through the same upcasters as every other read: were
    version 3 to call `starter` what version 2 called `beginner`, a version-2 document claimed
    with its timer reaches the core in version 3's shape."""
    app = bootstrap(settings)
    _register_all(app.store, app.envelopes, D(2027, 2, 1))
    registrations = t.registrations.c
    with app.store.engine.begin() as db:
        text = db.execute(
            select(cast(registrations.document, Text)).where(registrations.id == 1)
        ).scalar_one()
        old = json.loads(text)
        assert old["document_version"] == 2 and old["starter"] is False
        old["beginner"] = not old.pop("starter")
        db.execute(update(t.registrations).where(registrations.id == 1).values(document=old))
    monkeypatch.setattr(documents, "VERSION", 3)
    renamed = lambda d: {**d, "starter": d.pop("beginner", d.get("starter"))}  # noqa: E731
    monkeypatch.setitem(documents.UPCASTERS, 2, renamed)
    with app.store.transaction() as tx:
        claimed = tx.claim_due(D(2032, 2, 1), 500)
        assert claimed.registrations[1].registration.starter is True
        assert claimed.registrations[2].registration.starter is False
    app.store.engine.dispose()
