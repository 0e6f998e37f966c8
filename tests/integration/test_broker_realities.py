"""What RabbitMQ does to a long-running worker, on this machine's RabbitMQ: a consumer cancelled
because its queue was deleted, and a memory alarm that blocks publishing while messages flow.
The alarm is raised by lowering the memory watermark, and the watermark is put back whatever
happens."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from amqp import exceptions as amqp_errors
from kombu import Connection
from sqlalchemy import func, select

from tests.conftest import Bus, rabbitmqctl
from tests.integration.processes import wait_until
from tests.integration.test_operations import free_port, get, running  # noqa: F401
from worker import config
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import bootstrap, open_store
from worker.consumer.loop import Loop

pytestmark = pytest.mark.integration


def _keys(first: int, count: int) -> list[dict[str, object]]:
    numbers = (f"{n:08d}{97 - n % 97:02d}" for n in range(first, first + count))
    return [s.key(number) for number in numbers]


def _accepted(bus: Bus, expected: int, seen: set[str]) -> set[str]:
    """Collect `decision.request_accepted` ids until `expected` distinct ones have come."""

    def enough() -> bool:
        seen.update(e["id"] for e in bus.events() if e["type"] == "decision.request_accepted")
        return len(seen) >= expected

    wait_until(enough, 60, f"{expected} decisions")
    return seen


def test_a_cancelled_consumer_consumes_again_when_its_queue_comes_back(
    running: tuple[Loop, int],  # noqa: F811
    bus: Bus,
) -> None:
    first, second = _keys(10_100_000, 2)
    bus.publish(s.request(first))
    seen = _accepted(bus, 1, set())
    channel = bus.connection.default_channel
    channel.queue_delete("kmo.worker")  # RabbitMQ cancels the worker's consumer
    # The worker declares its queue again and consumes from it: a message sent now is handled.
    wait_until(lambda: _consumers(bus) == 1, 30, "the worker consuming again")
    bus.publish(s.request(second))
    assert len(_accepted(bus, 2, seen)) == 2


def _consumers(bus: Bus) -> int:
    """Consumers on the worker's queue; 0 while it is not declared again."""
    with Connection(bus.settings.broker_url) as connection:
        try:
            declared = connection.default_channel.queue_declare("kmo.worker", passive=True)
        except amqp_errors.NotFound:
            return 0
    return int(declared.consumer_count)


@pytest.fixture
def watermark() -> Iterator[None]:
    """The memory watermark as it was, put back after the test whatever happens."""
    before = rabbitmqctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().").strip()
    try:
        yield
    finally:
        absolute = re.fullmatch(r"\{absolute,\s*(\d+)\}", before)
        if absolute:
            rabbitmqctl("set_vm_memory_high_watermark", "absolute", absolute[1])
        else:
            rabbitmqctl("set_vm_memory_high_watermark", before)
        wait_until(lambda: _alarms() == "[]", 30, "the alarm to clear")


def _alarms() -> str:
    return rabbitmqctl("eval", "rabbit_alarm:get_alarms().").strip()


def test_a_memory_alarm_blocks_publishing_and_nothing_is_lost_or_stuck(
    settings: config.Settings,
    bus: Bus,
    watermark: None,
) -> None:
    """300 messages wait on the queue; the alarm goes up; the worker starts and takes them, and
    its first publish tells it the broker blocks: it goes on handling them all, says why it is
    not ready, and publishes every event once the alarm clears."""
    keys = _keys(10_200_000, 300)
    for key in keys:
        bus.publish(s.request(key))
    rabbitmqctl("set_vm_memory_high_watermark", "0.000001")
    port = free_port()
    runner = Loop(bootstrap(settings.model_copy(update={"metrics_port": port})))
    runner.serve_http()
    thread = threading.Thread(target=runner.run, daemon=True)
    try:
        wait_until(lambda: "memory" in _alarms(), 30, "the memory alarm")
        thread.start()
        wait_until(lambda: runner.outbound.blocked is not None, 30, "the worker told")
        status, why = get(port, "/readyz")
        assert status == 503 and "blocks publishing" in why
        assert "kmo_broker_blocked 1.0" in get(port, "/metrics")[1]
        wait_until(lambda: _registrations(settings) == 300, 60, "every message handled")
        assert runner.health.alive()[0]  # the loop turns: nothing waits on the broker
    finally:
        rabbitmqctl("set_vm_memory_high_watermark", "0.4")
    try:
        wait_until(lambda: runner.outbound.blocked is None, 60, "unblocked")
        assert len(_accepted(bus, 300, set())) == 300  # every event, once the alarm cleared
        wait_until(lambda: get(port, "/readyz")[0] == 200, 30, "ready again")
        assert "kmo_broker_blocked 0.0" in get(port, "/metrics")[1]
    finally:
        runner.stopping.set()
        thread.join(timeout=30)


def _registrations(settings: config.Settings) -> int:
    store = open_store(settings.database_url)
    with store.engine.connect() as db:
        found = int(db.execute(select(func.count()).select_from(t.registrations)).scalar_one())
    store.dispose()
    return found
