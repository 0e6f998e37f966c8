"""`replay --what-if` on a SQLite store in memory: lives decided again, compared with what was."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import update

from tests.unit import memory
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import App
from worker.domain.model import NoticeOffsets
from worker.service import unit_of_work, what_if

NUMBERS = ("1543301276", "0417497106", "0326541491")


def stored(tmp_path: Path) -> App:
    app = memory.app(tmp_path)
    for number in NUMBERS:
        messages = memory.life(number)
        unit_of_work.handle_messages(app.store, app.envelopes, messages, app.context(), memory.NOW)
    failing = memory.accepted(s.audit(s.key(NUMBERS[0]), memory.TODAY, result="failed"))
    unit_of_work.handle_messages(app.store, app.envelopes, [failing], app.context(), memory.NOW)
    return app


def judged(app: App, **changes: object) -> list[what_if.Verdict]:
    ctx = dataclasses.replace(app.context(), **changes)  # type: ignore[arg-type]
    return [v for batch in what_if.verdicts(app.store, ctx, batch=2) for v in batch]


def test_the_same_code_and_settings_decide_every_life_the_same(tmp_path: Path) -> None:
    verdicts = judged(stored(tmp_path))
    assert [v.registration_number for v in verdicts] == ["DV.O000001", "DV.O000002", "DV.O000003"]
    assert not any(v.differs for v in verdicts)


def test_other_notice_offsets_show_as_timers_that_would_change(tmp_path: Path) -> None:
    verdicts = judged(stored(tmp_path), offsets=NoticeOffsets(expiring=(60,)))
    assert all(v.differs and not v.fields and not v.events for v in verdicts)
    (cancelled, added) = verdicts[0].timers.values()
    assert len(cancelled) == 2 and len(added) == 1 and "(60 d before" in added[0]


def test_a_provider_appointed_audit_bureau_since_shows_as_a_decision_that_would_differ(
    tmp_path: Path,
) -> None:
    verdicts = judged(stored(tmp_path), audit_bureaus=frozenset({NUMBERS[0]}))
    first, *others = verdicts
    # An audit bureau may not be registered itself: its request would now be refused.
    assert first.fields["state"] == ["registered", "refused"]
    assert first.events[0]["decided"] == ["decision.request_accepted"]
    assert first.events[0]["now"] == ["decision.refused"]
    assert not any(v.differs for v in others)


def test_a_life_whose_bodies_were_cleared_is_not_replayable(tmp_path: Path) -> None:
    app = stored(tmp_path)
    with app.store.engine.begin() as db:
        db.execute(update(t.inbox).values(body=None))
    totals = what_if.Totals()
    for verdict in judged(app):
        totals.count(verdict)
    assert (totals.registrations, totals.unreplayable, totals.same) == (3, 3, 0)
