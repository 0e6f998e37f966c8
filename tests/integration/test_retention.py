"""R20 on PostgreSQL and SQLite: each kind of row goes once it has outlived its window, in
batches, and nothing a live registration's life needs ever goes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.support import message
from worker import samples as s
from worker.adapters.store import port
from worker.adapters.store import tables as t
from worker.bootstrap import open_store
from worker.domain.model import Context
from worker.entrypoints import explain
from worker.service import cases, intake, retention, unit_of_work
from worker.service.envelopes import Envelopes

pytestmark = pytest.mark.integration
D = dt.date
TODAY = D(2040, 1, 1)
NOW = dt.datetime(2040, 1, 1, 12, tzinfo=dt.UTC)
WINDOWS = retention.Windows(
    inbox_days=90,
    outbox_days=30,
    timer_days=30,
    dead_letter_days=365,
    closed_years=10,
    erasure_years=None,
)
LIVE, CLOSED, CLOSED_LATER = s.key("1543301276"), s.key("0403170701"), s.key("0326541491")


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> port.Store:
    if request.param == "postgresql":
        return open_store(request.getfixturevalue("database_url"))
    opened = open_store(f"sqlite:///{tmp_path / 'kmo.sqlite3'}")
    opened.migrate()
    return opened


def _send(store: port.Store, document: dict[str, Any], today: D) -> None:
    parsed = message(document)
    accepted = intake.Accepted(parsed.id, document["type"], parsed.data, body="{}")
    ctx = Context(today=today, audit_bureaus=frozenset({s.APPOINTED_BUREAU}))
    envelopes = Envelopes("urn:test")
    unit_of_work.handle_messages(store, envelopes, [accepted], ctx, NOW)


def _fill(store: port.Store) -> None:
    """Three registrations from 2027: one still live, one closed in 2028, one closed in 2031;
    a message about no registration; sent and unsent events; fired timers; dead letters."""
    for key in (LIVE, CLOSED, CLOSED_LATER):
        _send(store, s.request(key), D(2027, 1, 4))
        _send(store, s.declaration(key, D(2027, 1, 4)), D(2027, 1, 4))
        _send(store, s.audit(key, D(2027, 1, 4)), D(2027, 1, 4))
    _send(store, s.withdrawal(CLOSED), D(2028, 3, 1))
    _send(store, s.withdrawal(CLOSED_LATER), D(2031, 3, 1))
    _send(store, s.declaration(s.key("0202239951"), D(2027, 1, 4)), D(2027, 1, 4))
    with store.engine.begin() as db:
        long_ago = NOW - dt.timedelta(days=400)
        db.execute(update(t.inbox).values(handled_at=long_ago))
        db.execute(update(t.outbox).values(created_at=long_ago, sent_at=long_ago))
        unsent = select(func.max(t.outbox.c.id)).scalar_subquery()
        db.execute(update(t.outbox).where(t.outbox.c.id == unsent).values(sent_at=None))
        # The live registration's notice fired long ago, another due soon fired yesterday.
        timers = t.timers.c
        live = select(t.registrations.c.id).where(
            t.registrations.c.enterprise_number == "1543301276"
        )
        db.execute(
            t.timers.insert(),
            [
                {
                    "registration_id": db.execute(live).scalar_one(),
                    "kind": "notice.expiring",
                    "deadline": deadline,
                    "offset_days": offset,
                    "due_on": deadline - dt.timedelta(days=offset),
                    "fired_at": NOW,
                }
                for deadline, offset in ((D(2039, 6, 1), 91), (D(2040, 1, 20), 31))
            ],
        )
        assert db.execute(select(func.count()).where(timers.fired_at.is_not(None))).scalar()
    for days in (400, 10):
        store.record_dead_letter(
            {
                "message_id": f"dl-{days}",
                "type": "declaration.received",
                "reason": "schema_violation",
                "error": "received_on: not a date",
                "enterprise_number": "1543301276",
                "service": "training",
                "dead_lettered_at": NOW - dt.timedelta(days=days),
            }
        )


def _counts(store: port.Store) -> dict[str, int]:
    tables = (t.inbox, t.outbox, t.timers, t.dead_letters, t.history, t.registrations)
    with store.engine.connect() as db:
        return {
            table.name: db.execute(select(func.count()).select_from(table)).scalar_one()
            for table in tables
        }


def _history_of(store: port.Store, enterprise_number: str) -> int:
    r, h = t.registrations.c, t.history.c
    query = (
        select(func.count())
        .select_from(t.history.join(t.registrations, r.id == h.registration_id))
        .where(r.enterprise_number == enterprise_number)
    )
    with store.engine.connect() as db:
        return int(db.execute(query).scalar_one())


def test_each_kind_of_row_goes_after_its_window_and_a_live_life_stays(store: port.Store) -> None:
    _fill(store)
    before = _counts(store)
    live_history = _history_of(store, "1543301276")
    batches = list(
        retention.batches(store, Envelopes("urn:test"), Context(TODAY), NOW, WINDOWS, limit=3)
    )
    deleted = Counter[str]()
    for batch in batches:
        deleted[batch.table] += batch.rows
    after = _counts(store)
    # CLOSED closed in 2028, more than 10 years before 2040; CLOSED_LATER in 2031 stays.
    assert _history_of(store, "0403170701") == 0
    assert _history_of(store, "0326541491") > 0
    assert _history_of(store, "1543301276") == live_history
    assert after["registrations"] == before["registrations"] == 3
    assert after["inbox"] == before["inbox"] - 4 - 1  # CLOSED's four, the unattached one
    assert after["history"] == before["history"] - 4
    assert after["outbox"] == 1  # the one not yet sent
    assert after["dead_letters"] == 1
    assert after["timers"] == before["timers"] - 1  # the notice whose deadline passed long ago
    assert deleted["inbox"] == 1 and deleted["dead_letters"] == 1 and deleted["timers"] == 1
    assert deleted["history"] == 4 + 4  # history and archive of CLOSED
    assert all(batch.rows <= 3 for batch in batches if batch.table != "history")
    with store.engine.connect() as db:
        pruned = db.execute(select(t.registrations.c.pruned_on).order_by(t.registrations.c.id))
        assert [row[0] for row in pruned] == [None, TODAY, None]
    (closed,) = store.find("0403170701")
    story = cases.explain(store, closed, TODAY)  # what is left of it says so
    assert story["registration"]["pruned_on"] == TODAY.isoformat() and story["changes"] == []
    assert "deleted by retention" in explain.render(story)
    again = retention.batches(store, Envelopes("urn:test"), Context(TODAY), NOW, WINDOWS)
    assert sum(batch.rows for batch in again) == 0  # a second pass finds nothing
    oldest = store.oldest_kept()
    assert oldest["history"] == D(2031, 3, 1) and oldest["inbox"] is None
    store.dispose()
