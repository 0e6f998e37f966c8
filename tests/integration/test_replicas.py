"""Two worker processes on one queue, messages of the same registrations interleaved: the final
states equal those of a serial run, and no registration was decided on stale state."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import TODAY, Bus
from tests.integration.processes import WorkerProcess, count_rows, wait_until
from tests.support import Life
from worker import config
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROVIDERS = [f"{n:08d}{97 - n % 97:02d}" for n in range(10_000_000, 10_000_200)]


def test_two_replicas_end_where_a_serial_run_ends(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    rng = random.Random(7)
    day = TODAY - dt.timedelta(days=5)
    requests = [s.request(s.key(n), starter=(i % 4 == 0)) for i, n in enumerate(PROVIDERS)]
    rest: list[dict[str, object]] = []
    for i, number in enumerate(PROVIDERS):
        key = s.key(number)
        kind = "limited" if i % 4 == 0 else "full"
        report = s.audit(key, day, kind=kind, report_id=f"AR-{number}")
        rest += [s.declaration(key, day), report, {**report, "id": f"copy-{number}"}]
        if i % 5 == 1:
            rest.append(s.declaration(key, day))  # a second declaration: ignored, whenever it comes
    rng.shuffle(rest)

    for document in requests:
        bus.publish(document)
    workers = [WorkerProcess(settings, tmp_path, KMO_LOG_LEVEL="info") for _ in range(2)]
    for worker in workers:
        worker.wait_started()
    wait_until(lambda: count_rows(settings, t.inbox) == len(requests), 120, "the requests")
    for document in rest:
        bus.publish(document)
    total = len(requests) + len(rest)
    wait_until(lambda: count_rows(settings, t.inbox) == total, 240, "every message")
    for worker in workers:
        assert worker.terminate() == 0
    handled_by = [worker.log().count('"message_handled"') for worker in workers]
    assert sum(handled_by) == total
    assert min(handled_by) > total // 10, f"one replica did (almost) everything: {handled_by}"

    serial: dict[str, str | None] = {}
    for document in requests:
        serial[document["data"]["registration"]["enterprise_number"]] = None  # type: ignore[index]
    for number in PROVIDERS:
        life = Life()
        mine = [
            d
            for d in [*requests, *rest]
            if d["data"]["registration"]["enterprise_number"] == number
        ]  # type: ignore[index]
        for document in mine:
            life.send(document, TODAY)
        serial[number] = life.state
    engine = open_store(settings.database_url).engine
    with engine.connect() as db:
        actual = dict(
            db.execute(select(t.registrations.c.enterprise_number, t.registrations.c.state)).all()
        )
        decisions = Counter(
            json.loads(b)["type"] for b in db.execute(select(t.outbox.c.body)).scalars()
        )
    engine.dispose()
    assert actual == serial
    assert Counter(serial.values()) == {"registered": 150, "admitted_temporarily": 50}
    # each registration decided exactly once, however the two replicas interleaved
    assert decisions["decision.registered"] == 150
    assert decisions["decision.admitted_temporarily"] == 50
    assert decisions["message.ignored"] == 200 + 40  # the report copies and second declarations
