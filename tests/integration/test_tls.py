"""TLS to this machine's RabbitMQ (#18): a TLS listener started for the test with certificates
made by trustme, and stopped again whatever happens. The worker connects with the right CA,
and refuses a server whose certificate another CA signed or whose name is not the host's."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import ssl
import stat
import subprocess
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
EXTERNAL_USER = "kmo-worker-external"  # a broker user with no password: its certificate logs in
PLUGIN = "rabbitmq_auth_mechanism_ssl"


@pytest.fixture(scope="module")
def tls_listener() -> Iterator[Path]:
    # Not under pytest's temporary folders: their parent is private to this user, and the
    # broker runs as its own.
    folder = Path(tempfile.mkdtemp(prefix="kmo-tls-"))
    os.chmod(folder, 0o755)
    ca = trustme.CA()
    server = ca.issue_cert("localhost")  # not 127.0.0.1: a name the test can get wrong
    client = ca.issue_cert("kmo-worker")
    external = ca.issue_cert(EXTERNAL_USER, common_name=EXTERNAL_USER)  # the login is its name
    files = {
        "ca.pem": ca.cert_pem,
        "server.pem": server.cert_chain_pems[0],
        "server.key": server.private_key_pem,
        "client.pem": client.cert_chain_pems[0],
        "client.key": client.private_key_pem,
        "external.pem": external.cert_chain_pems[0],
        "external.key": external.private_key_pem,
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


def _connect(
    url: str, ca: Path, client: Path | None = None, *, as_: str = "client", external: bool = False
) -> None:
    settings = config.Settings(
        broker_url=url,
        broker_ca_file=ca,
        broker_cert_file=client and client / f"{as_}.pem",
        broker_key_file=client and client / f"{as_}.key",
        broker_tls_external=external,
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


@pytest.fixture
def external_login(tls_listener: Path) -> Iterator[None]:
    """RabbitMQ takes a client certificate as the login (SASL EXTERNAL): its plugin enabled,
    the mechanism offered, the certificate's common name as the user name, a user of that name
    without a password. All put back afterwards, whatever happens."""
    enabled = (
        PLUGIN
        in subprocess.run(
            ["rabbitmq-plugins", "-q", "list", "-e", PLUGIN], capture_output=True, text=True
        ).stdout
    )
    settings = {
        name: rabbitmqctl("eval", f"application:get_env(rabbit, {name}).").strip()
        for name in ("auth_mechanisms", "ssl_cert_login_from", "ssl_options")
    }
    try:
        if not enabled:
            subprocess.run(["rabbitmq-plugins", "-q", "enable", PLUGIN], check=True, timeout=120)
        rabbitmqctl(
            "eval", "application:set_env(rabbit, auth_mechanisms, ['PLAIN','AMQPLAIN','EXTERNAL'])."
        )
        rabbitmqctl("eval", "application:set_env(rabbit, ssl_cert_login_from, common_name).")
        # The mechanism trusts a certificate only where the broker's TLS settings verify peers
        # (it reads them, not the listener's): say so, as a broker set up for it would.
        rabbitmqctl(
            "eval",
            "application:set_env(rabbit, ssl_options, "
            "[{verify, verify_peer}, {fail_if_no_peer_cert, true}]).",
        )
        rabbitmqctl("add_user", EXTERNAL_USER, secrets.token_hex(16))
        rabbitmqctl("clear_password", EXTERNAL_USER)
        rabbitmqctl("set_permissions", "-p", "/", EXTERNAL_USER, ".*", ".*", ".*")
        yield
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", EXTERNAL_USER], capture_output=True)
        for name, before in settings.items():
            found = re.fullmatch(r"\{ok,(.*)\}", before, re.DOTALL)
            restore = (
                f"application:set_env(rabbit, {name}, {found[1]})."
                if found
                else f"application:unset_env(rabbit, {name})."
            )
            rabbitmqctl("eval", restore)
        if not enabled:
            subprocess.run(["rabbitmq-plugins", "-q", "disable", PLUGIN], check=True, timeout=120)


def test_sasl_external_the_certificate_is_the_login_and_no_password_is_sent(
    tls_listener: Path, external_login: None
) -> None:
    url = f"amqps://localhost:{MUTUAL_PORT}/"  # no user, no password
    _connect(url, tls_listener / "ca.pem", client=tls_listener, as_="external", external=True)
    # A certificate that names no user of the broker is no login.
    with pytest.raises(Exception) as refused:  # noqa: PT011 - kombu wraps the refusal
        _connect(url, tls_listener / "ca.pem", client=tls_listener, external=True)
    assert "ACCESS_REFUSED" in repr(refused.value) or "403" in repr(refused.value)
