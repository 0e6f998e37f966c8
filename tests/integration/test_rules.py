"""Every rule R1–R12 through the real RabbitMQ and PostgreSQL, checked against the pure core.

Each scenario is a list of business days, each with the messages published that day; the worker
then runs until idle with that date. The same scenario runs through the pure core (tests.support.
Life): both must publish the same events in the same order and end in the same state.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tests.conftest import Bus
from tests.support import Life
from worker import config
from worker import samples as s
from worker.adapters import broker
from worker.bootstrap import bootstrap
from worker.consumer.loop import Loop
from worker.service.clock import Clock

pytestmark = pytest.mark.integration
D = dt.date
KEY = s.key("1543301276")
Day = tuple[D, list[dict[str, Any]]]

conditional = s.audit(KEY, D(2027, 1, 20), result="conditional", follow_up_deadline=D(2027, 6, 30))
failed = s.audit(KEY, D(2027, 1, 20), result="failed", report_id="AR-F", findings=["integrity"])
passed = s.audit(KEY, D(2027, 1, 20), report_id="AR-P")
STARTER_ADMITTED = (
    D(2027, 2, 1),
    [
        s.request(KEY, starter=True),
        s.declaration(KEY, D(2027, 1, 15)),
        s.audit(KEY, D(2027, 1, 20), kind="limited"),
    ],
)
CONDITIONALLY_REGISTERED = [
    (D(2027, 2, 1), [s.request(KEY), s.declaration(KEY, D(2027, 1, 15)), conditional]),
    (D(2027, 2, 12), [s.approval(KEY, D(2027, 2, 10))]),
]

SCENARIOS: dict[str, tuple[list[Day], str, str]] = {
    # rule: (days, final state, the event that shows the rule)
    "R1 passed audit": (
        [(D(2027, 2, 1), [s.request(KEY), s.declaration(KEY, D(2027, 1, 15)), passed])],
        "registered",
        "decision.registered",
    ),
    "R2 declaration last": (
        [
            (D(2027, 2, 1), [s.request(KEY), passed]),
            (D(2027, 2, 9), [s.declaration(KEY, D(2027, 2, 8))]),
        ],
        "registered",
        "decision.registered",
    ),
    "R3 conditional, approved": (
        CONDITIONALLY_REGISTERED,
        "registered_conditionally",
        "decision.registered_conditionally",
    ),
    "R4 follow-up passed": (
        [
            *CONDITIONALLY_REGISTERED,
            (D(2027, 6, 30), [s.audit(KEY, D(2027, 6, 29), kind="follow_up")]),
        ],
        "registered",
        "decision.converted",
    ),
    "R5 follow-up missed": (
        [
            *CONDITIONALLY_REGISTERED,
            (D(2027, 6, 30), []),
            (D(2027, 7, 1), []),
        ],
        "stopped",
        "decision.stopped",
    ),
    "R5 follow-up failed": (
        [
            *CONDITIONALLY_REGISTERED,
            (D(2027, 3, 1), [s.audit(KEY, D(2027, 2, 27), kind="follow_up", result="failed")]),
        ],
        "stopped",
        "decision.stopped",
    ),
    "R6 no reaction": (
        [(D(2027, 2, 1), [s.request(KEY), failed]), (D(2027, 7, 20), []), (D(2027, 7, 21), [])],
        "refused",
        "decision.refused",
    ),
    "R6 reaction and re-audit": (
        [
            (D(2027, 2, 1), [s.request(KEY), s.declaration(KEY, D(2027, 1, 15)), failed]),
            (D(2027, 3, 1), [s.reaction(KEY, "AR-F", D(2027, 3, 1))]),
            (D(2027, 4, 1), [s.audit(KEY, D(2027, 3, 30))]),
        ],
        "registered",
        "decision.registered",
    ),
    "R7 starter extended": (
        [
            STARTER_ADMITTED,
            (D(2028, 6, 1), [s.audit(KEY, D(2028, 5, 30), kind="follow_up")]),
        ],
        "registered",
        "decision.extended",
    ),
    "R7 starter expired": (
        [
            STARTER_ADMITTED,
            (D(2029, 2, 1), []),
        ],
        "expired",
        "decision.expired",
    ),
    "R8 expiry": (
        [
            (D(2027, 2, 1), [s.request(KEY), s.declaration(KEY, D(2027, 1, 15)), passed]),
            (D(2032, 2, 1), []),
        ],
        "expired",
        "decision.expired",
    ),
    "R9 notices": (
        [
            (D(2027, 2, 1), [s.request(KEY), s.declaration(KEY, D(2027, 1, 15)), passed]),
            (D(2031, 11, 2), []),
            (D(2032, 1, 2), []),
        ],
        "registered",
        "notice.expiring",
    ),
    "R10 audit kind": (
        [(D(2027, 2, 1), [s.request(KEY), s.audit(KEY, D(2027, 1, 20), kind="limited")])],
        "requested",
        "message.ignored",
    ),
    "R11 second copy": (
        [(D(2027, 2, 1), [s.request(KEY), passed, {**passed, "id": "copy-of-AR-P"}])],
        "requested",
        "message.ignored",
    ),
}


def _real(
    settings: config.Settings, bus: Bus, days: list[Day]
) -> tuple[list[str], str, list[dict[str, Any]]]:
    events: list[str] = []
    for today, documents in days:
        for document in documents:
            bus.publish(document)
        app = bootstrap(settings.model_copy(update={"today": today}), Clock(today))
        assert Loop(app).run(until_idle=True) == 0
        events += [e["type"] for e in bus.events()]
        app.store.engine.dispose()
    app = bootstrap(settings)
    (stored,) = app.store.find(KEY["enterprise_number"])
    history = app.store.history_of(stored.id)
    app.store.engine.dispose()
    return events, stored.registration.state.value, history


def _pure(days: list[Day]) -> tuple[list[str], str | None]:
    life = Life()
    for today, documents in days:
        for document in documents:
            life.send(document, today)
        life.advance(today)
    return life.types(), life.state


@pytest.mark.parametrize("rule", list(SCENARIOS))
def test_rule_through_the_real_services(rule: str, settings: config.Settings, bus: Bus) -> None:
    days, final_state, telling_event = SCENARIOS[rule]
    events, state, history = _real(settings, bus, days)
    assert (events, state) == _pure(days)
    assert state == final_state
    assert telling_event in events
    # R12: every change of state is kept with the message or timer that caused it
    causes = {h["cause_id"] for h in history}
    sent = {d["id"] for _, documents in days for d in documents}
    changes = [h for h in history if h["from_state"] != h["to_state"]]
    assert changes, "no change of state was recorded"
    assert all(h["cause_id"] in sent or h["cause_id"].startswith("DV.") for h in changes)
    assert causes


def test_r21_the_request_after_the_last_number_waits_in_dead_letters(
    settings: config.Settings, bus: Bus
) -> None:
    """On PostgreSQL, whose counter is drawn in the batch's first statement: the request after
    DV.O999999 is dead-lettered `numbers_exhausted` with nothing written, the counter is left
    at the last number, and the next batch's messages are handled as ever."""
    from sqlalchemy import insert, select

    from worker.adapters.store import tables

    app = bootstrap(settings)
    with app.store.engine.begin() as db:  # type: ignore[attr-defined]
        db.execute(insert(tables.number_counters).values(service="training", last_value=999_998))
    app.store.engine.dispose()  # type: ignore[attr-defined]
    first, second = (s.request(s.key(n)) for n in ("1543301276", "0995127057"))
    bus.publish(first)
    bus.publish(second)
    bus.publish(s.declaration(s.key("1543301276"), D(2027, 1, 15)))
    app = bootstrap(settings)
    assert Loop(app).run(until_idle=True) == 0
    dead = bus.take(broker.DEAD_LETTER_QUEUE)
    assert [(json.loads(m.body)["id"], m.headers["x-kmo-reason"]) for m in dead] == [
        (second["id"], "numbers_exhausted")
    ]
    assert [e["type"] for e in bus.events()] == ["decision.request_accepted"]
    (stored,) = app.store.find("1543301276")
    assert stored.registration.number == "DV.O999999"
    assert app.store.find("0995127057") == []
    with app.store.engine.connect() as db:  # type: ignore[attr-defined]
        counter = select(tables.number_counters.c.last_value)
        assert db.execute(counter).scalar_one() == 999_999
    assert app.store.numbers_used() == {"training": 999_999}
    app.store.engine.dispose()  # type: ignore[attr-defined]
