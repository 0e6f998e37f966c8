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
from worker.observability import metrics

pytestmark = pytest.mark.integration
KEY = s.key("1543301276")
OTHER_BUREAU = "0326541491"  # has an account, but is not appointed
PASSWORD = "secret-for-tests"


@pytest.fixture
def users(vhost: str) -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:6]
    names = {role: f"{role}-{suffix}" for role in ("desk", "bqa", "bqb", "rogue", "vlaio", "ops")}
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
            "audit_bureaus": frozenset({s.APPOINTED_BUREAU, s.SECOND_BUREAU}),
            "publishers": {
                users["desk"]: config.Publisher(role="desk"),
                users["vlaio"]: config.Publisher(role="back_office"),
                users["bqa"]: config.Publisher(
                    role="audit_bureau", audit_bureau=s.APPOINTED_BUREAU
                ),
                users["bqb"]: config.Publisher(role="audit_bureau", audit_bureau=s.SECOND_BUREAU),
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


def _requested_and_declared(users: dict[str, str], vhost: str) -> dt.date:
    """The desk's request and declaration, published from its account; the declaration's day."""
    day = TODAY - dt.timedelta(days=3)
    publish_as(users["desk"], vhost, s.request(KEY))
    publish_as(users["desk"], vhost, s.declaration(KEY, day))
    return day


def test_each_publisher_is_held_to_its_own_role(
    secured: config.Settings, bus: Bus, users: dict[str, str], vhost: str
) -> None:
    day = _requested_and_declared(users, vhost)
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
            json.dumps({**s.request(KEY), "type": "registration.paused"}).encode(),
            "registration.paused",
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


def _ignored(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value("kmo_messages_ignored_total", {"reason": reason})
    return value or 0.0


def test_only_the_bureau_of_the_failed_report_may_reopen_it_until_the_case_moves(
    secured: config.Settings, bus: Bus, users: dict[str, str], vhost: str
) -> None:
    """R13 through the real broker, each bureau on its own account."""
    day = _requested_and_declared(users, vhost)
    publish_as(users["bqa"], vhost, s.audit(KEY, day, result="failed", report_id="AR-1"))
    run(secured)
    assert [e["type"] for e in bus.events()][-1] == "decision.audit_failed"

    before = _ignored("not_the_reports_bureau")
    publish_as(users["bqb"], vhost, s.reaction(KEY, "AR-1", day, bureau=s.SECOND_BUREAU))
    run(secured)
    (ignored,) = bus.events()
    assert ignored["type"] == "message.ignored"
    assert ignored["data"]["reason"] == "not_the_reports_bureau"
    assert _ignored("not_the_reports_bureau") - before == 1
    (stored,) = open_store(secured.database_url).find(KEY["enterprise_number"])
    assert stored.registration.state == "audit_failed"
    assert stored.registration.reaction_deadline is not None  # the six months still run

    publish_as(users["vlaio"], vhost, s.bureau_changed(KEY, s.SECOND_BUREAU, day))
    publish_as(users["bqb"], vhost, s.reaction(KEY, "AR-1", day, bureau=s.SECOND_BUREAU))
    run(secured)
    assert bus.events() == []  # the move and the reaction are silent for the mailers
    store = open_store(secured.database_url)
    (stored,) = store.find(KEY["enterprise_number"])
    assert stored.registration.state == "awaiting_reaudit"
    assert stored.registration.bureau == s.SECOND_BUREAU
    history = store.history_of(stored.id)
    assert [(h["rule"], h["bureau"], h["publisher"]) for h in history[-4:]] == [
        ("R6", s.APPOINTED_BUREAU, users["bqa"]),
        ("R11", s.SECOND_BUREAU, users["bqb"]),  # the refused reaction, with who sent it
        ("R13", s.SECOND_BUREAU, users["vlaio"]),
        ("R6", s.SECOND_BUREAU, users["bqb"]),
    ]
    assert "VLAIO-2027-0815" in history[-2]["note"]
    store.dispose()
