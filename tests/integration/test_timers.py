"""Durable timers on PostgreSQL: set on entering a state, fired once even by several sweeps."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from tests.support import message
from worker import config
from worker import samples as s
from worker.adapters import tables as t
from worker.bootstrap import bootstrap
from worker.domain.model import Context, NoticeOffsets
from worker.service import handling, intake, sweep
from worker.service.clock import Clock

pytestmark = pytest.mark.integration
D = dt.date
PROVIDERS = [f"{n:08d}{97 - n % 97:02d}" for n in range(10_000_000, 10_000_060)]


def _register_all(app: handling.Shell, today: D) -> None:
    ctx = Context(today=today)
    now = dt.datetime(2027, 2, 1, tzinfo=dt.UTC)
    for number in PROVIDERS:
        key = s.key(number)
        for document in (s.request(key), s.declaration(key, today), s.audit(key, today)):
            parsed = message(document)
            accepted = intake.Accepted(parsed.id, document["type"], parsed.data)
            handling.handle(app, accepted, ctx, now)


def test_entering_a_state_sets_its_timers_and_leaving_it_cancels_them(
    settings: config.Settings,
) -> None:
    app = bootstrap(settings)
    _register_all(app.shell, D(2027, 2, 1))
    with app.engine.connect() as db:
        kinds = Counter(
            db.execute(select(t.timers.c.kind).where(t.timers.c.fired_at.is_(None))).scalars()
        )
    # registered: the end of the period, and notices 90 and 30 days before it
    assert kinds == {"deadline.period_end": 60, "notice.expiring": 120}
    app.engine.dispose()


def test_two_sweeps_at_once_fire_every_timer_exactly_once(
    settings: config.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "BATCH", 7)  # small batches, so the two sweeps contend
    app = bootstrap(settings)
    _register_all(app.shell, D(2027, 2, 1))
    end = D(2032, 1, 31)
    ctx = Context(today=end + dt.timedelta(days=1), offsets=NoticeOffsets())
    fired: list[int] = []
    barrier = threading.Barrier(2)

    def sweeper() -> None:
        barrier.wait()
        fired.append(sweep.sweep(app.shell, ctx, Clock(ctx.today)))

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with app.engine.connect() as db:
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
    app.engine.dispose()


def test_an_empty_sweep_fires_nothing(settings: config.Settings) -> None:
    app = bootstrap(settings)
    _register_all(app.shell, D(2027, 2, 1))
    assert sweep.sweep(app.shell, Context(today=D(2027, 3, 1)), Clock(D(2027, 3, 1))) == 0
    app.engine.dispose()
