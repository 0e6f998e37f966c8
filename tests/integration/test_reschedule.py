"""R18 on PostgreSQL: replicas share one pass over the live registrations, one batch at a time."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.integration.test_timers import PROVIDERS, _register_all
from worker import config
from worker.adapters.store import tables as t
from worker.bootstrap import bootstrap
from worker.domain.model import NoticeOffsets
from worker.service import reschedule
from worker.service.clock import Clock

pytestmark = pytest.mark.integration
NOW = dt.datetime(2027, 2, 1, tzinfo=dt.UTC)


def test_replicas_share_the_pass_and_it_ends_once(database_url: str) -> None:
    app = bootstrap(
        config.Settings(database_url=database_url, notice_offsets=NoticeOffsets(expiring=(60,))),
        Clock(dt.date(2027, 2, 1)),
        configure_logs=False,
    )
    _register_all(app.store, app.envelopes, dt.date(2027, 2, 1))  # timers at 90 and 30 days
    ctx = app.context()

    with app.store.transaction() as holding:
        assert holding.timer_settings() is not None  # a replica's batch holds the pass
        assert reschedule.step(app.store, ctx, NOW).busy  # the other skips, without waiting
    steps = []
    while not (moved := reschedule.step(app.store, ctx, NOW, limit=25)).done:
        steps.append(moved.counts.registrations)
    steps.append(moved.counts.registrations)
    assert steps == [25, 25, len(PROVIDERS) - 50]
    with app.store.engine.connect() as db:
        offsets = dict(
            db.execute(
                select(t.timers.c.offset_days, func.count())
                .where(t.timers.c.kind == "notice.expiring")
                .group_by(t.timers.c.offset_days)
            ).all()
        )
    assert offsets == {60: len(PROVIDERS)}
    again = reschedule.step(app.store, ctx, NOW)
    assert again.done and again.counts.registrations == 0
