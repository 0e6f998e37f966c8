"""Secrets as files (#18): the worker reads its database and broker URLs from files, as a
mounted Kubernetes Secret or compose `secrets:` hand them over, and never writes them out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker import config

pytestmark = pytest.mark.e2e
PASSWORD = "s3cr3t-never-logged"


def test_the_urls_come_from_files_and_their_passwords_are_never_written_out(
    settings: config.Settings, tmp_path: Path
) -> None:
    # PostgreSQL on this machine trusts local connections: the password is carried, not checked.
    database = settings.database_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    assert PASSWORD in database
    (tmp_path / "database-url").write_text(database + "\n")
    (tmp_path / "broker-url").write_text(settings.broker_url + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMO_")}
    env |= {
        "KMO_DATABASE_URL_FILE": str(tmp_path / "database-url"),
        "KMO_BROKER_URL_FILE": str(tmp_path / "broker-url"),
        "KMO_AUTH_REQUIRED": "false",
        "KMO_LOG_FORMAT": "json",
        "KMO_LOG_LEVEL": "debug",
    }
    written = ""
    for args in (["migrate"], ["run", "--until-idle"], ["find", "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "worker.entrypoints.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        written += done.stdout + done.stderr
    assert "worker_started" in written and "worker_stopped" in written  # it did log, at debug
    assert PASSWORD not in written
