"""Real services for the integration and e2e tests: a fresh RabbitMQ vhost and a fresh
PostgreSQL database per test, so tests never see each other's queues, rows or dead letters."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from kombu.connection import Connection
from kombu.entity import Queue
from kombu.messaging import Producer

from worker import config, samples
from worker.adapters import broker
from worker.bootstrap import open_store

PG_ADMIN = os.environ.get("KMO_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = os.environ.get("KMO_TEST_PG_BASE", "postgresql+psycopg://postgres@127.0.0.1:5432")
AMQP_BASE = os.environ.get("KMO_TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
TODAY = dt.date(2027, 2, 1)


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"kmo_template_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    store = open_store(f"{PG_BASE}/{name}")
    store.migrate()
    store.dispose()
    yield name
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_template: str) -> Iterator[str]:
    name = f"kmo_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield f"{PG_BASE}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class VhostPool:
    """Fresh vhosts, made 40 at a time in one `rabbitmqctl eval` (each rabbitmqctl call starts an
    Erlang VM, about 0.7 s), all deleted in one call at the end of the session."""

    BATCH = 40
    ACTOR = '<<"kmo-tests">>'

    def __init__(self) -> None:
        self.free: list[str] = []
        self.used: list[str] = []

    def take(self) -> str:
        if not self.free:
            names = [f"kmo-test-{uuid.uuid4().hex[:12]}" for _ in range(self.BATCH)]
            self._eval(
                "begin rabbit_vhost:add(list_to_binary(N), {a}), "
                'rabbit_auth_backend_internal:set_permissions(<<"guest">>, list_to_binary(N), '
                '<<".*">>, <<".*">>, <<".*">>, {a}) end',
                names,
                fallback=lambda name: (
                    rabbitmqctl("add_vhost", name),
                    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*"),
                ),
            )
            self.free = names
        name = self.free.pop()
        self.used.append(name)
        return name

    def close(self) -> None:
        names = self.used + self.free
        if names:
            self._eval(
                "rabbit_vhost:delete(list_to_binary(N), {a})",
                names,
                fallback=lambda name: rabbitmqctl("delete_vhost", name),
            )

    def _eval(self, body: str, names: list[str], fallback: Any) -> None:
        listed = ", ".join(f'"{name}"' for name in names)
        expression = f"[{body.format(a=self.ACTOR)} || N <- [{listed}]], ok."
        try:
            rabbitmqctl("eval", expression)
        except subprocess.CalledProcessError:  # another RabbitMQ version: one by one
            for name in names:
                fallback(name)


@pytest.fixture(scope="session")
def _vhost_pool() -> Iterator[VhostPool]:
    pool = VhostPool()
    yield pool
    pool.close()


@pytest.fixture
def vhost(_vhost_pool: VhostPool) -> str:
    return _vhost_pool.take()


@pytest.fixture
def broker_url(vhost: str) -> str:
    return f"{AMQP_BASE}/{vhost}"


@pytest.fixture
def settings(database_url: str, broker_url: str) -> config.Settings:
    return config.Settings(
        database_url=database_url,
        broker_url=broker_url,
        today=TODAY,
        auth_required=False,
        audit_bureaus=frozenset({samples.APPOINTED_BUREAU}),
        downstream_queues={"kmo.mailer": ["decision.#", "notice.#"], "test.all-events": ["#"]},
        log_format="json",
    )


class Bus:
    """The test's side of the broker: publish inbound, read what the worker published."""

    def __init__(self, settings: config.Settings) -> None:
        self.settings = settings
        self.connection = Connection(
            settings.broker_url, transport_options={"confirm_publish": True}
        )
        broker.declare(self.connection, broker.topology(settings))
        self.producer = Producer(self.connection.default_channel)

    def publish(
        self,
        document: dict[str, Any] | bytes,
        *,
        user: str | None = None,
        routing_key: str | None = None,
    ) -> None:
        if isinstance(document, bytes):
            broker.publish_inbound(
                self.producer, document, routing_key or "registration.requested", user
            )
            return
        body = json.dumps(document).encode()
        broker.publish_inbound(self.producer, body, routing_key or document["type"], user)

    def take(self, queue: str) -> list[Any]:
        """Everything waiting in a queue, acknowledged (kombu messages, bodies undecoded)."""
        channel = self.connection.default_channel
        taken = []
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            taken.append(message)
        return taken

    def events(self, queue: str = "test.all-events") -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.take(queue)]

    def depth(self, queue: str) -> int:
        return int(
            Queue(queue, durable=True)(self.connection.default_channel).queue_declare(passive=True)[
                1
            ]
        )

    def close(self) -> None:
        self.connection.release()


@pytest.fixture
def bus(settings: config.Settings) -> Iterator[Bus]:
    connection = Bus(settings)
    yield connection
    connection.close()
