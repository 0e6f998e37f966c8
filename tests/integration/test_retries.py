"""Transient failures are retried with a bound; what cannot succeed is dead-lettered, once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import TODAY, Bus
from tests.integration.processes import wait_until
from worker import config
from worker import samples as s
from worker.adapters import broker
from worker.bootstrap import bootstrap
from worker.consumer.loop import Loop
from worker.entrypoints import dead_letters
from worker.observability import metrics
from worker.service import unit_of_work

pytestmark = pytest.mark.integration
KEY = s.key("1543301276")


def _flaky(failures: int, error: Exception) -> Any:
    real = unit_of_work.handle_messages
    calls = {"n": 0}

    def handle(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise error
        return real(*args, **kwargs)

    return handle, calls


def _retries(cause: str) -> float:
    return metrics.REGISTRY.get_sample_value("kmo_retries_total", {"cause": cause}) or 0.0


def test_a_transient_failure_is_retried_and_then_handled(
    settings: config.Settings, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle, calls = _flaky(2, OperationalError("SELECT", {}, ConnectionError("server closed")))
    monkeypatch.setattr(unit_of_work, "handle_messages", handle)
    before = _retries("database_unavailable")
    bus.publish(s.request(KEY))
    Loop(bootstrap(settings)).run(until_idle=True)
    assert calls["n"] == 3
    assert _retries("database_unavailable") - before == 2
    assert [e["type"] for e in bus.events()] == ["decision.request_accepted"]
    assert bus.take(broker.DEAD_LETTER_QUEUE) == []


def test_a_failure_that_retrying_cannot_mend_is_dead_lettered_at_once(
    settings: config.Settings, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle, calls = _flaky(1000, RuntimeError("a bug"))
    monkeypatch.setattr(unit_of_work, "handle_messages", handle)
    document = s.request(KEY)
    bus.publish(document)
    Loop(bootstrap(settings)).run(until_idle=True)
    assert calls["n"] == 1
    (dead,) = bus.take(broker.DEAD_LETTER_QUEUE)
    assert dead.headers["x-kmo-reason"] == "processing_failed"
    assert "a bug" in dead.headers["x-kmo-error"]
    assert dead.headers["x-kmo-original-routing-key"] == "registration.requested"
    assert bus.depth(settings.inbound_queue) == 0  # acked after dead-lettering: no hot loop


def test_a_transient_failure_past_the_bound_is_dead_lettered(
    settings: config.Settings, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle, calls = _flaky(1000, OperationalError("SELECT", {}, ConnectionError("gone")))
    monkeypatch.setattr(unit_of_work, "handle_messages", handle)
    bus.publish(s.request(KEY))
    bounded = settings.model_copy(update={"retry_attempts": 3})
    Loop(bootstrap(bounded)).run(until_idle=True)
    assert calls["n"] == 3
    (dead,) = bus.take(broker.DEAD_LETTER_QUEUE)
    assert dead.headers["x-kmo-reason"] == "processing_failed"


def test_a_message_that_keeps_killing_its_consumer_is_dead_lettered_by_the_broker(
    settings: config.Settings, bus: Bus
) -> None:
    """A worker that dies with the message in hand never acks it; RabbitMQ counts the
    deliveries and moves it to kmo.dead-letter after the limit (quorum queue)."""
    document = s.request(KEY)
    bus.publish(document)
    for _ in range(settings.delivery_limit + 1):
        channel = bus.connection.channel()
        message = channel.basic_get(settings.inbound_queue, no_ack=False)
        channel.close()  # as a crash would: unacked, returned to the queue
        if message is None:
            break
    assert bus.depth(settings.inbound_queue) == 0
    # at-least-once dead-lettering moves it asynchronously
    wait_until(lambda: bus.depth(broker.DEAD_LETTER_QUEUE) == 1, 30, "the broker's dead letter")
    (dead,) = bus.take(broker.DEAD_LETTER_QUEUE)
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    letter = dead_letters.parse(dead)  # what `kmo-worker dead-letters` shows and replays
    assert (letter.reason, letter.exchange, letter.routing_key) == (
        "delivery_limit",
        "kmo.inbound",
        "registration.requested",
    )


def test_events_nobody_is_bound_for_are_returned_and_counted(settings: config.Settings) -> None:
    bare = settings.model_copy(update={"downstream_queues": {}})
    bus = Bus(bare)  # declares no downstream queue at all
    try:
        before = metrics.REGISTRY.get_sample_value("kmo_events_returned_total") or 0.0
        bus.publish(s.request(KEY))
        bus.publish(s.approval(s.key("0995127057"), TODAY))
        Loop(bootstrap(bare)).run(until_idle=True)
        after = metrics.REGISTRY.get_sample_value("kmo_events_returned_total") or 0.0
        assert after - before == 2  # decision.request_accepted and message.ignored
    finally:
        bus.close()
