"""kill -9 at random moments while 2,000 messages flow: each effect exactly once, each event
published at least once, never two different contents under one event id."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import TODAY, Bus
from tests.integration.processes import WorkerProcess, count_rows, wait_until
from worker import config
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROVIDERS = [f"{n:08d}{97 - n % 97:02d}" for n in range(10_000_000, 10_001_000)]


def _chaos(
    settings: config.Settings, tmp_path: Path, rounds: int, done: int, rng: random.Random
) -> int:
    """Start a worker and kill it once it has handled a random few more messages, `rounds`
    times or until `done` are handled. Measured in messages, not seconds: a machine (or a
    worker) twice as fast must not finish a phase before the kills have had their turn."""
    kills = 0
    for _ in range(rounds):
        if count_rows(settings, t.inbox) >= done:
            break
        # Small batches: more commits, so more moments for the kill to fall between two.
        worker = WorkerProcess(settings, tmp_path, KMO_BATCH_SIZE="20")
        target = count_rows(settings, t.inbox) + rng.randint(10, 120)
        wait_until(
            lambda w=worker, n=target: (
                count_rows(settings, t.inbox) >= n or w.process.poll() is not None
            ),  # type: ignore[misc]
            60,
            "some messages handled",
            every=0.002,
        )
        if worker.process.poll() is None:  # still running: that is the point
            worker.kill()
            kills += 1
    return kills


def test_kill_minus_nine_while_messages_flow(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    rng = random.Random(20261127)
    day = TODAY - dt.timedelta(days=5)
    for number in PROVIDERS:
        bus.publish(s.request(s.key(number)))
    kills = _chaos(settings, tmp_path, rounds=10, done=1000, rng=rng)

    second: list[dict[str, object]] = []
    for number in PROVIDERS[:500]:
        key = s.key(number)
        second += [s.declaration(key, day), s.audit(key, day)]
    rng.shuffle(second)
    worker = WorkerProcess(settings, tmp_path)  # finish phase one before phase two starts
    wait_until(lambda: count_rows(settings, t.inbox) == 1000, 240, "the requests")
    worker.kill()
    kills += 1
    for document in second:
        bus.publish(document)
    kills += _chaos(settings, tmp_path, rounds=10, done=2000, rng=rng)

    worker = WorkerProcess(settings, tmp_path, KMO_LOG_LEVEL="info")
    worker.wait_started()
    wait_until(
        lambda: (
            count_rows(settings, t.inbox) == 2000
            and count_rows(settings, t.outbox, t.outbox.c.sent_at.is_(None)) == 0
        ),
        300,
        "every message and event",
    )
    assert worker.terminate() == 0
    assert kills >= 5

    # exactly once in the database
    engine = open_store(settings.database_url).engine
    with engine.connect() as db:
        states = Counter(db.execute(select(t.registrations.c.state)).scalars())
        history = Counter(db.execute(select(t.history.c.registration_id)).scalars())
        stored = {row.event_id: row.body for row in db.execute(select(t.outbox))}
    engine.dispose()
    assert states == {"registered": 500, "requested": 500}
    assert sorted(Counter(history.values()).items()) == [(1, 500), (3, 500)]
    assert Counter(json.loads(b)["type"] for b in stored.values()) == {
        "decision.request_accepted": 1000,
        "decision.registered": 500,
    }

    # at least once on the broker, one content per id
    received: dict[str, set[str]] = defaultdict(set)
    for message in bus.take("test.all-events"):
        body = message.body if isinstance(message.body, str) else message.body.decode()
        received[json.loads(body)["id"]].add(body)
    assert set(received) == set(stored), "an event was never published"
    assert all(len(bodies) == 1 for bodies in received.values()), "one id, two contents"
    assert all(received[i] == {body} for i, body in stored.items())
    assert bus.take("kmo.dead-letter") == []
