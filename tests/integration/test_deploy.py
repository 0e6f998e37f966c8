"""The local stack's RabbitMQ definitions on a real broker, and the compose worker configuration."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from amqp.exceptions import AccessRefused
from kombu.connection import Connection
from kombu.entity import Queue
from kombu.messaging import Producer

from tests.conftest import AMQP_BASE, rabbitmqctl
from worker import config
from worker.adapters import broker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PASSWORDS = {  # the local passwords documented for the compose stack
    "kmo-worker": "worker-secret",
    "desk": "desk-secret",
    "vlaio": "vlaio-secret",
    "bureau-a": "bureau-a-secret",
    "bureau-b": "bureau-b-secret",
    "mailer": "mailer-secret",
}


def _url(user: str) -> str:
    host = AMQP_BASE.split("@")[1]
    return f"amqp://{user}:{PASSWORDS[user]}@{host}/kmo"


@pytest.fixture
def imported() -> Iterator[None]:
    if "kmo" in rabbitmqctl("list_vhosts").split():
        pytest.fail("a vhost named kmo exists already on this broker; this test would change it")
    rabbitmqctl("import_definitions", str(ROOT / "deploy/rabbitmq/definitions.json"))
    yield
    for user in DEFINITIONS["users"]:
        rabbitmqctl("delete_user", user["name"])
    rabbitmqctl("delete_vhost", "kmo")


def _worker_environment() -> dict[str, str]:
    """The worker's environment in the compose file, its secrets' files where compose mounts
    them (`/run/secrets/<name>`) found where the compose file takes them from."""
    worker = COMPOSE["services"]["worker"]
    assert set(worker["secrets"]) == {"database-url", "broker-url"}
    mounted = {
        f"/run/secrets/{name}": str(ROOT / COMPOSE["secrets"][name]["file"])
        for name in worker["secrets"]
    }
    return {k: mounted.get(str(v), str(v)) for k, v in worker["environment"].items()}


def test_every_account_logs_in_with_its_documented_password(imported: None) -> None:
    assert {u["name"] for u in DEFINITIONS["users"]} == set(PASSWORDS)
    for user in PASSWORDS:
        with Connection(_url(user)) as connection:
            connection.ensure_connection(max_retries=1)


def test_publishers_may_write_inbound_only_and_the_mailer_read_its_queue_only(
    imported: None,
) -> None:
    settings = config.Settings(broker_url=_url("kmo-worker"), auth_required=True)
    with Connection(_url("kmo-worker")) as worker:
        broker.declare(worker, broker.topology(settings))
    with Connection(_url("desk"), transport_options={"confirm_publish": True}) as desk:
        Producer(desk.default_channel).publish(
            b"{}", exchange=broker.INBOUND_EXCHANGE, routing_key="x", user_id="desk"
        )
        with pytest.raises(AccessRefused):
            Queue("desk-own-queue", durable=True)(desk.channel()).declare()
    with Connection(_url("mailer")) as mailer:
        assert mailer.default_channel.basic_get("kmo.mailer", no_ack=True) is None
        with pytest.raises(AccessRefused):
            mailer.channel().basic_get("kmo.worker", no_ack=True)


def test_the_compose_worker_configuration_is_valid_and_names_the_broker_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in [k for k in os.environ if k.startswith("KMO_")]:
        monkeypatch.delenv(key)
    for key, value in _worker_environment().items():
        monkeypatch.setenv(key, value)
    settings = config.load()
    assert settings.authenticate
    users = {u["name"] for u in DEFINITIONS["users"]}
    assert set(settings.publishers) <= users
    bureaus = {p.audit_bureau for p in settings.publishers.values() if p.role == "audit_bureau"}
    assert bureaus == settings.audit_bureaus
    assert settings.broker_url.startswith("amqp://kmo-worker:worker-secret@")
    assert settings.database_url.startswith("postgresql+psycopg://kmo:kmo-secret@postgres")
    assert "KMO_BROKER_URL" not in _worker_environment()  # a file, not the environment
    assert settings.tracing  # to the stack's Jaeger (#19)
    assert "jaeger" in COMPOSE["services"]
