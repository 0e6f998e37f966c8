"""TLS to this machine's RabbitMQ (#18): a TLS listener started for the test with certificates
made by trustme, and stopped again whatever happens. The worker connects with the right CA,
and refuses a server whose certificate another CA signed or whose name is not the host's."""

from __future__ import annotations

import os
import shutil
import ssl
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.conftest import rabbitmqctl
from worker import config
from worker.adapters import broker

pytestmark = pytest.mark.integration
PORT = 5671


MUTUAL_PORT = 5673  # a second listener, which asks for the client's certificate


@pytest.fixture(scope="module")
def tls_listener() -> Iterator[Path]:
    # Not under pytest's temporary folders: their parent is private to this user, and the
    # broker runs as its own.
    folder = Path(tempfile.mkdtemp(prefix="kmo-tls-"))
    os.chmod(folder, 0o755)
    ca = trustme.CA()
    server = ca.issue_cert("localhost")  # not 127.0.0.1: a name the test can get wrong
    client = ca.issue_cert("kmo-worker")
    files = {
        "ca.pem": ca.cert_pem,
        "server.pem": server.cert_chain_pems[0],
        "server.key": server.private_key_pem,
        "client.pem": client.cert_chain_pems[0],
        "client.key": client.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(folder / name))
        os.chmod(folder / name, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    files_of = (
        f'{{cacertfile, "{folder}/ca.pem"}}, {{certfile, "{folder}/server.pem"}}, '
        f'{{keyfile, "{folder}/server.key"}}'
    )
    plain = f"[{files_of}, {{verify, verify_none}}, {{fail_if_no_peer_cert, false}}]"
    mutual = f"[{files_of}, {{verify, verify_peer}}, {{fail_if_no_peer_cert, true}}]"
    try:
        rabbitmqctl("eval", f"rabbit_networking:start_ssl_listener({PORT}, {plain}, 1, 1).")
        rabbitmqctl("eval", f"rabbit_networking:start_ssl_listener({MUTUAL_PORT}, {mutual}, 1, 1).")
        yield folder
    finally:  # the broker goes back to how it was, even when a test failed
        for port in (PORT, MUTUAL_PORT):
            rabbitmqctl("eval", f"rabbit_networking:stop_tcp_listener({port}).")
        shutil.rmtree(folder, ignore_errors=True)


def _connect(url: str, ca: Path, client: Path | None = None) -> None:
    settings = config.Settings(
        broker_url=url,
        broker_ca_file=ca,
        broker_cert_file=client and client / "client.pem",
        broker_key_file=client and client / "client.key",
        heartbeat_seconds=0,
    )
    connection = broker.connect(settings)
    try:
        connection.ensure_connection(max_retries=1)
        assert connection.connected
    finally:
        connection.release()


def test_the_worker_connects_over_tls_with_the_ca_that_signed_the_server(
    tls_listener: Path,
) -> None:
    _connect(f"amqps://guest:guest@localhost:{PORT}/", tls_listener / "ca.pem")


def test_a_server_signed_by_another_ca_is_refused(tls_listener: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(Exception) as refused:  # noqa: PT011 - kombu wraps the ssl error
        _connect(f"amqps://guest:guest@localhost:{PORT}/", other)
    assert "CERTIFICATE_VERIFY_FAILED" in repr(refused.value) or isinstance(
        refused.value, ssl.SSLCertVerificationError
    )


def test_a_server_whose_certificate_names_another_host_is_refused(tls_listener: Path) -> None:
    with pytest.raises(Exception) as refused:  # noqa: PT011 - kombu wraps the ssl error
        _connect(f"amqps://guest:guest@127.0.0.1:{PORT}/", tls_listener / "ca.pem")
    assert "IP address mismatch" in repr(refused.value) or "hostname" in repr(refused.value)


def test_mutual_tls_the_worker_shows_its_certificate_and_without_one_is_refused(
    tls_listener: Path,
) -> None:
    url = f"amqps://guest:guest@localhost:{MUTUAL_PORT}/"
    _connect(url, tls_listener / "ca.pem", client=tls_listener)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the server ends the handshake
        _connect(url, tls_listener / "ca.pem")
