"""The inbound side on the embedded broker and a SQLite store in memory: bad input is
dead-lettered at once; a batch that fails is handled again one by one, so one message that
cannot be handled holds back no other; only what committed is acked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kombu.messaging import Consumer, Producer

from tests.unit import memory
from worker import samples
from worker.adapters import broker
from worker.bootstrap import App
from worker.consumer.arrivals import Arrivals
from worker.consumer.inbound import Inbound
from worker.service import retrying, unit_of_work

NUMBERS = ["1543301276", "0995127057", "0326541491"]


def _deliver(app: App, documents: list[Any]) -> tuple[list[Any], list[bytes]]:
    """Publish, take the deliveries as the loop would, hand them to the inbound side; what was
    dead-lettered."""
    settings = app.settings
    with broker.connect(settings) as connection:
        broker.declare(connection, app.topology)
        producer = Producer(connection.default_channel)
        for document in documents:
            body = document if isinstance(document, bytes) else json.dumps(document).encode()
            broker.publish_inbound(producer, body, "registration.requested", None)
        waiting = Arrivals(settings.batch_size)
        consumer = Consumer(
            connection.default_channel, queues=[app.topology.inbound], on_message=waiting.add
        )
        with consumer:
            while len(waiting) < len(documents):
                waiting.drain(connection)
            batch = waiting.take()
            policy = retrying.policy(lambda _cause: None, attempts=2, max_seconds=1)
            events = Inbound(app, policy).handle(batch, producer)
        dead = broker.take_all(connection, broker.DEAD_LETTER_QUEUE)
        left = broker.take_all(connection, settings.inbound_queue)
    assert left == []  # every delivery was acked: handled or dead-lettered
    return events, dead


def test_a_message_that_cannot_be_handled_holds_back_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = memory.app(tmp_path)
    documents = [samples.request(samples.key(n)) for n in NUMBERS]
    bad_id = documents[1]["id"]
    real = unit_of_work.UnitOfWork.handle
    calls: list[int] = []

    def handle(self: unit_of_work.UnitOfWork, message: Any) -> unit_of_work.Result:
        calls.append(len(calls))
        if message.id == bad_id:
            raise RuntimeError("a bug that one message trips")
        return real(self, message)

    monkeypatch.setattr(unit_of_work.UnitOfWork, "handle", handle)
    events, dead = _deliver(app, [*documents, b"{not json"])
    assert [e.type for e in events] == ["decision.request_accepted"] * 2
    assert dead[0] == b"{not json"  # at once, before the batch's transaction
    assert [json.loads(body)["id"] for body in dead[1:]] == [bad_id]  # processing_failed
    assert {n: len(app.store.find(n)) for n in NUMBERS} == {
        NUMBERS[0]: 1,
        NUMBERS[1]: 0,
        NUMBERS[2]: 1,
    }
    # the batch once (it failed at the second), then each message on its own
    assert len(calls) == 2 + 3


def test_a_batch_that_commits_is_acked_whole(tmp_path: Path) -> None:
    app = memory.app(tmp_path)
    events, dead = _deliver(app, [samples.request(samples.key(n)) for n in NUMBERS])
    assert [e.type for e in events] == ["decision.request_accepted"] * 3
    assert dead == []


def test_a_request_past_the_last_number_waits_in_dead_letters_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    """R21: DV.O999999 is the last training number; the requests after it are dead-lettered
    `numbers_exhausted`, whole, and an advice request in the same batch is numbered as ever."""
    from sqlalchemy import insert

    from worker.adapters.store import tables
    from worker.consumer import gauges
    from worker.observability import metrics as m

    app = memory.app(tmp_path)
    with app.store.engine.begin() as db:  # type: ignore[attr-defined]
        db.execute(insert(tables.number_counters).values(service="training", last_value=999_998))
    documents = [
        samples.request(samples.key(NUMBERS[0])),
        samples.request(samples.key(NUMBERS[1])),
        samples.request(samples.key(NUMBERS[2], service="advice")),
    ]
    before = m.DEAD_LETTERS.labels("numbers_exhausted")._value.get()
    events, dead = _deliver(app, documents)
    assert [e.type for e in events] == ["decision.request_accepted"] * 2
    assert [json.loads(body)["id"] for body in dead] == [documents[1]["id"]]
    assert m.DEAD_LETTERS.labels("numbers_exhausted")._value.get() == before + 1
    numbers = {n: [s.registration.number for s in app.store.find(n)] for n in NUMBERS}
    assert numbers == {NUMBERS[0]: ["DV.O999999"], NUMBERS[1]: [], NUMBERS[2]: ["DV.A000001"]}
    gauges.refresh_states(app.store)
    assert m.NUMBERS_LEFT.labels("training")._value.get() == 0
    assert m.NUMBERS_LEFT.labels("advice")._value.get() == 999_998
