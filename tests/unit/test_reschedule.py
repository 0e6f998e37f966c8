"""R18: a change of the notice offsets reaches the pending timers of live registrations."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from sqlalchemy import select

from tests.support import Life
from tests.unit import memory
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import App
from worker.domain import schedule
from worker.domain.model import NoticeOffsets
from worker.service import reschedule, unit_of_work

D = dt.date
KEY = s.key("1543301276")
SIXTY = NoticeOffsets(expiring=(60,))


def registered() -> Life:
    life = Life()
    life.send(s.request(KEY), D(2027, 1, 4))
    life.send(s.declaration(KEY, D(2027, 1, 4)), D(2027, 1, 4))
    life.send(s.audit(KEY, D(2027, 1, 10)), D(2027, 1, 11))
    return life


def test_r18_old_notices_go_new_ones_come_and_a_passed_day_is_not_sent_late() -> None:
    registration = registered().registration
    assert registration is not None and registration.period is not None
    end = registration.period.end
    stored = dict.fromkeys(schedule.timers_for(registration, NoticeOffsets()), False)
    cancel, add = schedule.rescheduled(registration, stored, SIXTY, D(2027, 2, 1))
    assert {(x.kind, x.offset_days) for x in cancel} == {
        ("notice.expiring", 90),
        ("notice.expiring", 30),
    }
    assert add == [schedule.Timer(end - dt.timedelta(days=60), "notice.expiring", end, 60)]
    # Changed 45 days before the end: the 60-day notice's day has passed; it is not added.
    late = end - dt.timedelta(days=45)
    assert schedule.rescheduled(registration, stored, SIXTY, late)[1] == []


def test_r18_a_missing_deadline_is_added_even_when_due() -> None:
    registration = registered().registration
    assert registration is not None
    _, add = schedule.rescheduled(registration, {}, NoticeOffsets(), D(2040, 1, 1))
    assert [x.kind for x in add] == ["deadline.period_end"]


def test_r18_a_fired_timer_is_neither_cancelled_nor_added_again() -> None:
    registration = registered().registration
    assert registration is not None
    stored = dict.fromkeys(schedule.timers_for(registration, NoticeOffsets()), True)
    assert schedule.rescheduled(registration, stored, NoticeOffsets(), D(2027, 2, 1)) == ([], [])


def pending(app: App) -> list[tuple[str, int]]:
    c = t.timers.c
    with app.store.engine.connect() as db:
        rows = db.execute(select(c.kind, c.offset_days).where(c.fired_at.is_(None)))
        return sorted((kind, offset) for kind, offset in rows)


def test_r18_a_pass_reschedules_in_batches_once_and_then_holds(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    for number in ("1543301276", "0417497106", "0326541491"):
        unit_of_work.handle_messages(
            app.store, app.envelopes, memory.life(number), app.context(), memory.NOW
        )
    assert pending(app).count(("notice.expiring", 90)) == 3
    changed = dataclasses.replace(app.context(), offsets=SIXTY)
    before = list(reschedule.plan(app.store, changed, limit=2))
    assert [c.registrations for c in before] == [2, 1]
    assert pending(app).count(("notice.expiring", 90)) == 3  # a plan changes nothing

    first = reschedule.step(app.store, changed, memory.NOW, limit=2)
    assert (first.done, first.counts.registrations, first.counts.cancelled) == (False, 2, 4)
    second = reschedule.step(app.store, changed, memory.NOW, limit=2)
    assert (second.done, second.counts.registrations, second.counts.added) == (True, 1, 1)
    assert pending(app) == [("deadline.period_end", 0)] * 3 + [("notice.expiring", 60)] * 3
    again = reschedule.step(app.store, changed, memory.NOW, limit=2)
    assert again.done and again.counts.registrations == 0  # the timers follow the settings
