"""TLS to PostgreSQL through the URL (`sslmode=verify-full`, `sslrootcert`), on this machine's
PostgreSQL: TLS is switched on for the test with a certificate made by trustme (`ALTER SYSTEM`,
a reload), and switched off again whatever happens. The worker's store connects over TLS with
the right CA, and is refused by a server signed by another CA and under another host name."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trustme
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from tests.conftest import PG_ADMIN
from tests.integration.processes import wait_until
from worker.bootstrap import open_store

pytestmark = pytest.mark.integration
SETTINGS = ("ssl", "ssl_cert_file", "ssl_key_file")


def _admin(*statements: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as db:
        for statement in statements:
            db.execute(statement)  # type: ignore[arg-type]


def _ssl_on() -> bool:
    with psycopg.connect(PG_ADMIN, autocommit=True) as db:
        row = db.execute("SHOW ssl").fetchone()
    return row is not None and row[0] == "on"


@pytest.fixture(scope="module")
def server_ca() -> Iterator[trustme.CA]:
    """PostgreSQL with TLS on, its certificate (for 127.0.0.1 only) signed by the CA given."""
    ca = trustme.CA()
    folder = Path(tempfile.mkdtemp(prefix="kmo-pg-tls-"))
    folder.chmod(0o755)  # the postgres user reads it
    cert, key = folder / "server.crt", folder / "server.key"
    issued = ca.issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    postgres = pwd.getpwnam("postgres")
    for path in (cert, key):
        os.chown(path, postgres.pw_uid, postgres.pw_gid)
    key.chmod(0o600)  # PostgreSQL refuses a key others may read
    try:
        _admin(
            f"ALTER SYSTEM SET ssl_cert_file = '{cert}'",
            f"ALTER SYSTEM SET ssl_key_file = '{key}'",
            "ALTER SYSTEM SET ssl = on",
            "SELECT pg_reload_conf()",
        )
        wait_until(_ssl_on, 30, "PostgreSQL to take TLS on")
        yield ca
    finally:
        _admin(*(f"ALTER SYSTEM RESET {name}" for name in SETTINGS), "SELECT pg_reload_conf()")
        wait_until(lambda: not _ssl_on(), 30, "PostgreSQL to take TLS off again")
        shutil.rmtree(folder, ignore_errors=True)


def _url(database_url: str, host: str, ca_file: Path) -> str:
    url = database_url.replace("@127.0.0.1:", f"@{host}:")
    return f"{url}?sslmode=verify-full&sslrootcert={ca_file}"


def test_the_store_connects_over_tls_verifying_the_server(
    server_ca: trustme.CA, database_url: str, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    server_ca.cert_pem.write_to_path(str(ca_file))
    store = open_store(_url(database_url, "127.0.0.1", ca_file))
    with store.engine.connect() as db:
        encrypted = db.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
        assert encrypted.scalar_one() is True
    assert store.answers() and store.is_at_head()
    store.dispose()


@pytest.mark.parametrize("wrong", ["another CA", "another host name"])
def test_the_store_refuses_a_server_it_cannot_verify(
    server_ca: trustme.CA, database_url: str, tmp_path: Path, wrong: str
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca = trustme.CA() if wrong == "another CA" else server_ca
    ca.cert_pem.write_to_path(str(ca_file))
    host = "localhost" if wrong == "another host name" else "127.0.0.1"
    store = open_store(_url(database_url, host, ca_file))
    with pytest.raises(OperationalError) as refused:
        store.engine.connect().close()
    why = str(refused.value)
    assert "certificate verify failed" in why or "does not match host name" in why
    store.dispose()
