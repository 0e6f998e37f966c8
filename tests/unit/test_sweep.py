"""The sweep on a SQLite store in memory: due timers fire through the core, once; one timer
that cannot fire holds back no other."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.unit import memory
from worker.bootstrap import App
from worker.consumer import sweep
from worker.contracts.envelope import Outgoing
from worker.domain import lifecycle
from worker.domain.model import Context
from worker.service import unit_of_work

PROVIDERS = ["1543301276", "0995127057", "0326541491"]
AFTER_THE_PERIOD = dt.date(2032, 2, 1)


def _registered(app: App) -> None:
    for number in PROVIDERS:
        unit_of_work.handle_messages(
            app.store, app.envelopes, memory.life(number), app.context(), memory.NOW
        )


def _sweep(app: App, today: dt.date, sent: list[Outgoing]) -> int:
    return sweep.sweep(app.store, app.envelopes, Context(today=today), app.clock, send=sent.extend)


def test_due_timers_fire_once_and_their_events_are_handed_over(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    _registered(app)
    sent: list[Outgoing] = []
    assert _sweep(app, memory.TODAY, sent) == 0  # nothing due yet
    assert _sweep(app, AFTER_THE_PERIOD, sent) == 9  # two notices and the end, each
    assert [e.type for e in sent] == ["decision.expired"] * 3  # the late notices say nothing
    assert _sweep(app, AFTER_THE_PERIOD, sent) == 0
    assert {s.registration.state for n in PROVIDERS for s in app.store.find(n)} == {"expired"}


def test_a_timer_that_fails_is_left_due_and_the_others_fire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = memory.app(tmp_path)
    _registered(app)
    real = lifecycle.fire

    def fire(registration: object, timer: object, ctx: object) -> object:
        if registration.key.enterprise_number == PROVIDERS[1]:  # type: ignore[attr-defined]
            raise RuntimeError("a bug in one rule")
        return real(registration, timer, ctx)  # type: ignore[arg-type]

    monkeypatch.setattr(lifecycle, "fire", fire)
    sent: list[Outgoing] = []
    monkeypatch.setattr(sweep, "BATCH", 4)  # several batches, the failing one among them
    assert _sweep(app, AFTER_THE_PERIOD, sent) == 6
    states = {n: app.store.find(n)[0].registration.state for n in PROVIDERS}
    assert states == {PROVIDERS[0]: "expired", PROVIDERS[1]: "registered", PROVIDERS[2]: "expired"}
    assert app.store.stats(AFTER_THE_PERIOD).due == 3  # what the gauge shows


def test_a_full_claim_that_lost_a_timer_is_not_taken_for_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a full claim drops a timer another sweep fired after the claim's snapshot
    (#20): the batch is short, but more may be due, and the sweep goes on."""
    from worker.adapters.store import port, sqlite

    app = memory.app(tmp_path)
    _registered(app)
    real = sqlite.SqliteTransaction.claim_due
    dropped: list[int] = []

    def claim_due(self: object, today: dt.date, limit: int, exclude: object = ()) -> object:
        claimed: port.Claimed = real(self, today, limit, exclude)  # type: ignore[arg-type]
        if claimed.full and not dropped:  # the first full claim loses its first timer
            dropped.append(claimed.dues[0].id)
            return claimed._replace(dues=claimed.dues[1:])
        return claimed

    monkeypatch.setattr(sqlite.SqliteTransaction, "claim_due", claim_due)
    monkeypatch.setattr(sweep, "BATCH", 4)
    assert _sweep(app, AFTER_THE_PERIOD, []) == 9
    assert dropped and app.store.stats(AFTER_THE_PERIOD).due == 0
