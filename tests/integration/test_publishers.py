"""Who may publish what, with real RabbitMQ users; bad input of every kind; replay."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from amqp.exceptions import PreconditionFailed
from kombu.connection import Connection
from kombu.messaging import Producer
from sqlalchemy import func, select

from tests.conftest import AMQP_BASE, TODAY, Bus, rabbitmqctl
from tests.e2e.test_cli import kmo
from worker import config
from worker import samples as s
from worker.adapters import broker
from worker.adapters.store import tables as t
from worker.bootstrap import bootstrap, open_store
from worker.consumer.loop import Loop

pytestmark = pytest.mark.integration
KEY = s.key("1543301276")
OTHER_BUREAU = "0326541491"  # has an account, but is not appointed
PASSWORD = "secret-for-tests"


@pytest.fixture
def users(vhost: str) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:6]
    names = {role: f"{role}-{suffix}" for role in ("desk", "bqa", "rogue", "vlaio", "ops")}
    for name in names.values():
        rabbitmqctl("add_user", name, PASSWORD)
        rabbitmqctl("set_permissions", "-p", vhost, name, ".*", ".*", ".*")
    yield names
    for name in names.values():
        rabbitmqctl("delete_user", name)


@pytest.fixture
def secured(settings: config.Settings, users: dict[str, str]) -> config.Settings:
    return settings.model_copy(
        update={
            "auth_required": True,
            "publishers": {
                users["desk"]: config.Publisher(role="desk"),
                users["vlaio"]: config.Publisher(role="back_office"),
                users["bqa"]: config.Publisher(
                    role="audit_bureau", audit_bureau=s.APPOINTED_BUREAU
                ),
                users["rogue"]: config.Publisher(role="audit_bureau", audit_bureau=OTHER_BUREAU),
                users["ops"]: config.Publisher(role="operator"),
            },
        }
    )


def publish_as(user: str, vhost: str, document: dict[str, Any], user_id: str | None = None) -> None:
    with Connection(
        f"amqp://{user}:{PASSWORD}@{AMQP_BASE.split('@')[1]}/{vhost}",
        transport_options={"confirm_publish": True},
    ) as connection:
        producer = Producer(connection.default_channel)
        broker.publish_inbound(
            producer, json.dumps(document).encode(), document["type"], user_id or user
        )


def run(settings: config.Settings) -> None:
    app = bootstrap(settings)
    assert Loop(app).run(until_idle=True) == 0
    app.store.engine.dispose()


def _registrations(settings: config.Settings) -> int:
    engine = open_store(settings.database_url).engine
    with engine.connect() as db:
        value = int(db.execute(select(func.count()).select_from(t.registrations)).scalar_one())
    engine.dispose()
    return value


def test_each_publisher_is_held_to_its_own_role(
    secured: config.Settings, bus: Bus, users: dict[str, str], vhost: str
) -> None:
    day = TODAY - dt.timedelta(days=3)
    publish_as(users["desk"], vhost, s.request(KEY))
    publish_as(users["desk"], vhost, s.declaration(KEY, day))
    forged = [
        (users["desk"], s.audit(KEY, day)),  # the desk's account
        (users["rogue"], s.audit(KEY, day)),  # another bureau's account, about the appointed one
        (users["rogue"], s.audit(KEY, day, bureau=OTHER_BUREAU)),  # its own, but not appointed
        (users["bqa"], s.approval(KEY, day)),  # a bureau may not approve
    ]
    for user, document in forged:
        publish_as(user, vhost, document)
    run(secured)
    dead = bus.take(broker.DEAD_LETTER_QUEUE)
    assert [m.headers["x-kmo-reason"] for m in dead] == ["unauthorized_publisher"] * 4
    assert [m.headers["x-kmo-original-user-id"] for m in dead] == [u for u, _ in forged]
    assert [e["type"] for e in bus.events()] == ["decision.request_accepted"]

    publish_as(users["bqa"], vhost, s.audit(KEY, day))  # the real thing
    run(secured)
    assert [e["type"] for e in bus.events()] == ["decision.registered"]


def test_a_connection_cannot_claim_another_user(
    users: dict[str, str], vhost: str, secured: config.Settings
) -> None:
    """The property the worker relies on: RabbitMQ refuses a user_id that is not the
    connection's own user, so no account can pass itself off as an audit bureau."""
    Bus(secured).close()  # the topology exists
    with pytest.raises(PreconditionFailed):
        publish_as(users["desk"], vhost, s.audit(KEY, TODAY), user_id=users["bqa"])


def test_a_message_without_user_id_is_refused_when_authentication_is_on(
    secured: config.Settings, bus: Bus
) -> None:
    bus.publish(s.request(KEY))  # guest, no user_id property
    run(secured)
    (dead,) = bus.take(broker.DEAD_LETTER_QUEUE)
    assert dead.headers["x-kmo-reason"] == "unauthorized_publisher"
    assert "no user_id" in dead.headers["x-kmo-error"]
    assert _registrations(secured) == 0


@pytest.mark.parametrize(
    ("body", "routing_key", "reason"),
    [
        (b"x" * (256 * 1024 + 1), "registration.requested", "too_large"),
        (b"<xml/>", "registration.requested", "not_json"),
        (
            json.dumps({**s.request(KEY), "type": "registration.withdrawn"}).encode(),
            "registration.withdrawn",
            "unknown_type",
        ),
        (
            json.dumps({**s.request(KEY), "data": {"iban": "BE68539007547034"}}).encode(),
            "registration.requested",
            "schema_violation",
        ),
    ],
)
def test_bad_input_is_dead_lettered_with_its_reason_and_changes_nothing(
    settings: config.Settings, bus: Bus, body: bytes, routing_key: str, reason: str
) -> None:
    bus.publish(body, routing_key=routing_key)
    run(settings)
    (dead,) = bus.take(broker.DEAD_LETTER_QUEUE)
    received = dead.body if isinstance(dead.body, bytes) else dead.body.encode()
    assert received == body
    assert dead.headers["x-kmo-reason"] == reason
    assert dead.headers["x-kmo-error"]
    assert dead.headers["x-kmo-worker-version"]
    assert dt.datetime.fromisoformat(dead.headers["x-kmo-failed-at"])
    assert dead.headers["x-kmo-original-routing-key"] == routing_key
    assert _registrations(settings) == 0
    assert bus.events() == []


def test_replay_sends_a_dead_letter_back_on_behalf_of_its_publisher(
    secured: config.Settings, bus: Bus, users: dict[str, str], vhost: str
) -> None:
    publish_as(users["desk"], vhost, s.request(KEY))
    narrower = secured.model_copy(
        update={"publishers": {k: v for k, v in secured.publishers.items() if k != users["desk"]}}
    )
    run(narrower)  # the desk's account was not configured yet: dead-lettered
    assert _registrations(secured) == 0

    url = secured.broker_url.replace("guest:guest", f"{users['ops']}:{PASSWORD}")
    operator = secured.model_copy(update={"broker_url": url})
    listed = kmo(operator, "dead-letters", "list")
    assert "unauthorized_publisher" in listed.stdout and "registration.requested" in listed.stdout
    replayed = kmo(operator, "dead-letters", "replay", "--reason", "unauthorized_publisher")
    assert replayed.returncode == 0, replayed.stderr
    assert "1 dead letter(s) replayed" in replayed.stdout
    run(secured)  # now configured: the replayed request counts as the desk's
    assert _registrations(secured) == 1
    assert [e["type"] for e in bus.events()] == ["decision.request_accepted"]
    assert "No dead letters." in kmo(operator, "dead-letters", "list").stdout
