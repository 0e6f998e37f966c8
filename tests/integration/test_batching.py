"""`broker.pending` on a real py-amqp connection: the loop's "has a delivery arrived already?"
(the loop's use of it is tested in tests/unit/test_drain.py). Were a kombu or py-amqp release to
move the socket, `pending` would answer True always and batches would follow a steady stream
again, silently; this test would fail instead."""

from __future__ import annotations

import time

import pytest
from kombu import Connection
from kombu.messaging import Consumer

from tests.conftest import Bus
from worker import config
from worker import samples as s
from worker.adapters import broker
from worker.bootstrap import bootstrap
from worker.entrypoints.runner import Runner

pytestmark = pytest.mark.integration


def _consume(settings: config.Settings, connection: Connection, runner: Runner) -> Consumer:
    topo = broker.topology(settings)
    broker.declare(connection, topo)
    return Consumer(
        connection.default_channel,
        queues=[topo.inbound],
        on_message=runner._buffer.append,
        prefetch_count=settings.prefetch,
    )


def test_pending_tells_whether_a_delivery_waits_without_waiting(
    settings: config.Settings, bus: Bus
) -> None:
    runner = Runner(bootstrap(settings))
    with broker.connect(settings) as connection, _consume(settings, connection, runner):
        assert broker.pending(connection) is False
        started = time.monotonic()
        assert broker.pending(connection) is False
        assert time.monotonic() - started < 0.001  # a look, not a wait
        bus.publish(s.request(s.key("1543301276")))
        deadline = time.monotonic() + 5
        while not broker.pending(connection) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert broker.pending(connection) is True
        connection.drain_events(timeout=1)
        assert len(runner._buffer) == 1
        assert broker.pending(connection) is False
    runner.app.engine.dispose()
