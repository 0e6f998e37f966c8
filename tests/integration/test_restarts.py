"""The broker or the database restarts mid-stream; the worker is asked to stop mid-stream."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import TODAY, Bus, rabbitmqctl
from tests.integration.processes import WorkerProcess, wait_until
from worker import config
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROVIDERS = [f"{n:08d}{97 - n % 97:02d}" for n in range(10_000_000, 10_001_500)]


def _inbox(settings: config.Settings) -> int:
    try:
        engine = open_store(settings.database_url).engine
        with engine.connect() as db:
            return int(db.execute(select(func.count()).select_from(t.inbox)).scalar_one())
    except Exception:  # the database may be restarting
        return -1
    finally:
        engine.dispose()


def _publish_lives(bus: Bus) -> None:
    day = TODAY - dt.timedelta(days=5)
    for number in PROVIDERS:
        key = s.key(number)
        for document in (s.request(key), s.declaration(key, day), s.audit(key, day)):
            bus.publish(document)


def _check_all_registered(settings: config.Settings, bus: Bus) -> None:
    engine = open_store(settings.database_url).engine
    with engine.connect() as db:
        states = set(db.execute(select(t.registrations.c.state)).scalars())
        count = db.execute(select(func.count()).select_from(t.registrations)).scalar_one()
    engine.dispose()
    assert (count, states) == (len(PROVIDERS), {"registered"})
    events = [json.loads(m.body)["type"] for m in bus.take("test.all-events")]
    assert events.count("decision.registered") >= len(PROVIDERS)
    assert len({*events}) == 2
    assert bus.take("kmo.dead-letter") == []


@pytest.fixture
def broker_comes_back() -> Iterator[None]:
    yield
    rabbitmqctl("start_app")  # whatever happened in the test
    rabbitmqctl("await_startup")


def test_broker_restart_mid_stream(
    settings: config.Settings, bus: Bus, tmp_path: Path, broker_comes_back: None
) -> None:
    _publish_lives(bus)
    bus.close()
    worker = WorkerProcess(settings, tmp_path, KMO_LOG_LEVEL="info")
    worker.wait_started()
    wait_until(lambda: _inbox(settings) > 50, 120, "the worker to get going")
    rabbitmqctl("stop_app")
    handled_while_down = _inbox(settings)
    time.sleep(3)
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
    wait_until(
        lambda: _inbox(settings) == 3 * len(PROVIDERS), 180, "every message after the restart"
    )
    assert handled_while_down < 3 * len(PROVIDERS), "the broker stopped too late to test anything"
    time.sleep(1)  # the relay's last batch
    assert worker.terminate() == 0
    assert "broker_connection_lost" in worker.log()
    again = Bus(settings)
    try:
        _check_all_registered(settings, again)
    finally:
        again.close()


def _postgres(action: str) -> None:
    version = subprocess.run(
        ["ls", "/etc/postgresql"], capture_output=True, text=True
    ).stdout.split()[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_database_restart_mid_stream(settings: config.Settings, bus: Bus, tmp_path: Path) -> None:
    _publish_lives(bus)
    worker = WorkerProcess(settings, tmp_path, KMO_LOG_LEVEL="info")
    worker.wait_started()
    wait_until(lambda: _inbox(settings) > 50, 120, "the worker to get going")
    _postgres("restart")
    wait_until(
        lambda: _inbox(settings) == 3 * len(PROVIDERS), 180, "every message after the restart"
    )
    time.sleep(1)
    assert worker.terminate() == 0
    log = worker.log()
    assert any(word in log for word in ('"retrying"', "relay_failed", "sweep_failed")), log[-2000:]
    _check_all_registered(settings, bus)


def test_sigterm_finishes_the_message_in_hand_and_exits_zero(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    _publish_lives(bus)
    worker = WorkerProcess(settings, tmp_path, KMO_LOG_LEVEL="info")
    worker.wait_started()
    wait_until(lambda: _inbox(settings) > 30, 120, "the worker to get going")
    started = time.monotonic()
    assert worker.terminate(timeout=settings.shutdown_grace_seconds + 5) == 0
    assert time.monotonic() - started < settings.shutdown_grace_seconds
    engine = open_store(settings.database_url).engine
    with engine.connect() as db:
        pending = db.execute(
            select(func.count()).select_from(t.outbox).where(t.outbox.c.sent_at.is_(None))
        ).scalar_one()
    engine.dispose()
    assert pending == 0, "the outbox was not flushed on the way out"
    assert _inbox(settings) < 3 * len(PROVIDERS), "it did not stop mid-stream"
    rest = WorkerProcess(settings, tmp_path, "--until-idle")
    assert rest.wait() == 0
    _check_all_registered(settings, bus)


def test_an_idle_worker_keeps_its_broker_connections(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    """RabbitMQ closes a connection that says nothing for two heartbeat intervals; py-amqp
    sends heartbeats only when asked. With 1 s heartbeats, 6 idle seconds are enough to lose
    every connection of a worker that does not ask."""
    worker = WorkerProcess(settings, tmp_path, KMO_HEARTBEAT_SECONDS="1", KMO_LOG_LEVEL="info")
    try:
        worker.wait_started()
        time.sleep(6)
        bus.publish(s.request(s.key(PROVIDERS[0])))
        wait_until(lambda: len(bus.events()) == 1, 30, "the request's decision")
        assert '"broker_connection_lost"' not in worker.log()
        assert worker.log().count('"worker_started"') == 1
    finally:
        assert worker.terminate() == 0
