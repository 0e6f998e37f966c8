"""The whole path on the real RabbitMQ and PostgreSQL: kmo.inbound → rules → database → kmo.events."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from tests.conftest import TODAY, Bus
from worker import config
from worker import samples as s
from worker.adapters import broker
from worker.adapters.store import tables as t
from worker.bootstrap import bootstrap
from worker.consumer.loop import Loop

pytestmark = pytest.mark.integration
KEY = s.key("1543301276")


def run_until_idle(settings: config.Settings) -> None:
    app = bootstrap(settings)
    assert Loop(app).run(until_idle=True) == 0
    app.store.engine.dispose()


def test_request_declaration_and_passed_audit_register_the_provider(
    settings: config.Settings, bus: Bus
) -> None:
    bus.publish(s.request(KEY))
    bus.publish(s.declaration(KEY, TODAY - dt.timedelta(days=3)))
    bus.publish(s.audit(KEY, TODAY - dt.timedelta(days=2)))
    run_until_idle(settings)

    events = bus.events()
    assert [e["type"] for e in events] == ["decision.request_accepted", "decision.registered"]
    registered = events[1]
    assert registered["data"]["period"] == {"start": "2027-02-01", "end": "2032-01-31"}
    assert registered["data"]["registration_number"] == "DV.O000001"
    assert registered["data"]["recipient"]["email"] == "info@peeters.example"
    assert [json.loads(m.body)["type"] for m in bus.take("kmo.mailer")] == [
        "decision.request_accepted",
        "decision.registered",
    ]

    app = bootstrap(settings)
    (stored,) = app.store.find("1543301276")
    assert stored.registration.state == "registered"
    history = app.store.history_of(stored.id)
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        (None, "requested"),
        ("requested", "requested"),
        ("requested", "registered"),
    ]
    app.store.engine.dispose()


def test_events_carry_the_cloudevents_envelope_and_amqp_properties(
    settings: config.Settings, bus: Bus
) -> None:
    document = s.request(KEY)
    bus.publish(document)
    run_until_idle(settings)
    (message,) = bus.take("test.all-events")
    event = json.loads(message.body)
    assert message.delivery_info["routing_key"] == event["type"] == "decision.request_accepted"
    assert message.properties["message_id"] == event["id"]
    assert message.properties["content_type"] == "application/cloudevents+json"
    assert event["causationid"] == document["id"]
    assert event["specversion"] == "1.0"


def test_a_message_that_fails_its_schema_is_dead_lettered_and_changes_nothing(
    settings: config.Settings, bus: Bus
) -> None:
    broken = s.request(KEY)
    del broken["data"]["iban"]
    bus.publish(broken)
    bus.publish(s.request(s.key("0995127057")))  # the worker carries on after it
    run_until_idle(settings)

    (dead,) = bus.take(broker.DEAD_LETTER_QUEUE)
    assert json.loads(dead.body) == broken  # the body unchanged
    assert dead.headers["x-kmo-reason"] == "schema_violation"
    assert "iban" in dead.headers["x-kmo-error"]
    assert dead.headers["x-kmo-original-exchange"] == "kmo.inbound"
    assert dead.headers["x-kmo-original-routing-key"] == "registration.requested"
    assert [e["type"] for e in bus.events()] == ["decision.request_accepted"]
    assert bus.depth(settings.inbound_queue) == 0

    app = bootstrap(settings)
    with app.store.engine.connect() as db:
        count = db.execute(select(func.count()).select_from(t.registrations)).scalar_one()
        assert count == 1
    assert app.store.find("1543301276") == []
    app.store.engine.dispose()


def test_the_same_message_id_twice_has_one_effect(settings: config.Settings, bus: Bus) -> None:
    document = s.request(KEY)
    bus.publish(document)
    bus.publish(document)
    run_until_idle(settings)
    assert [e["type"] for e in bus.events()] == ["decision.request_accepted"]


def test_a_message_the_rules_do_not_allow_is_answered_with_message_ignored(
    settings: config.Settings, bus: Bus
) -> None:
    document = s.approval(KEY, TODAY)
    bus.publish(document)
    run_until_idle(settings)
    (event,) = bus.events()
    assert event["type"] == "message.ignored"
    assert event["data"]["reason"] == "unknown_registration"
    assert event["data"]["ignored_id"] == document["id"]
    assert bus.take("kmo.mailer") == []  # operations' business, not the mailers'
