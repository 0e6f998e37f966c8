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


@pytest.fixture(scope="module")
def tls_listener() -> Iterator[Path]:
    # Not under pytest's temporary folders: their parent is private to this user, and the
    # broker runs as its own.
    folder = Path(tempfile.mkdtemp(prefix="kmo-tls-"))
    os.chmod(folder, 0o755)
    ca = trustme.CA()
    server = ca.issue_cert("localhost")  # not 127.0.0.1: a name the test can get wrong
    files = {
        "ca.pem": ca.cert_pem,
        "server.pem": server.cert_chain_pems[0],
        "server.key": server.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(folder / name))
        os.chmod(folder / name, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    options = (
        f'[{{cacertfile, "{folder}/ca.pem"}}, {{certfile, "{folder}/server.pem"}}, '
        f'{{keyfile, "{folder}/server.key"}}, {{verify, verify_none}}, '
        "{fail_if_no_peer_cert, false}]"
    )
    rabbitmqctl("eval", f"rabbit_networking:start_ssl_listener({PORT}, {options}, 1, 1).")
    try:
        yield folder
    finally:  # the broker goes back to how it was, even when a test failed
        rabbitmqctl("eval", f"rabbit_networking:stop_tcp_listener({PORT}).")
        shutil.rmtree(folder, ignore_errors=True)


def _connect(url: str, ca: Path) -> None:
    settings = config.Settings(broker_url=url, broker_ca_file=ca, heartbeat_seconds=0)
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
