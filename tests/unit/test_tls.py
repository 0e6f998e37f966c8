"""TLS to RabbitMQ (#18): for amqps:// the server's certificate and host name are verified, with
the CA and client certificate the settings name; plain amqp:// stays plain."""

from __future__ import annotations

import ssl
from pathlib import Path

from worker import config
from worker.adapters import broker


def test_amqps_verifies_the_certificate_and_the_host_name_by_default() -> None:
    settings = config.Settings(broker_url="amqps://worker:pw@rabbit.example:5671/kmo")
    assert broker.tls(settings) == {
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": "rabbit.example",
    }
    connection = broker.connect(settings)
    assert connection.ssl == broker.tls(settings)
    assert connection.login_method is None  # a password, from the URL
    connection.release()


def test_a_ca_a_client_certificate_and_the_external_login(tmp_path: Path) -> None:
    settings = config.Settings(
        broker_url="amqps://rabbit.example/kmo",
        broker_ca_file=tmp_path / "ca.pem",
        broker_cert_file=tmp_path / "client.pem",
        broker_key_file=tmp_path / "client.key",
        broker_tls_external=True,
    )
    assert broker.tls(settings) == {
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": "rabbit.example",
        "ca_certs": str(tmp_path / "ca.pem"),
        "certfile": str(tmp_path / "client.pem"),
        "keyfile": str(tmp_path / "client.key"),
    }
    connection = broker.connect(settings)
    assert connection.login_method == "EXTERNAL"
    connection.release()


def test_plain_amqp_stays_plain() -> None:
    settings = config.Settings(broker_url="amqp://guest:guest@localhost:5672//")
    assert broker.tls(settings) is None
    connection = broker.connect(settings)
    assert not connection.ssl
    connection.release()
