"""The real `kmo-worker` command line in a subprocess, on the real broker and database."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Bus
from worker import config
from worker import samples as s

pytestmark = pytest.mark.e2e
KEY = s.key("1543301276")


def kmo(
    settings: config.Settings,
    *args: str,
    stdin: str | None = None,
    extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMO_")}
    env |= {
        "KMO_DATABASE_URL": settings.database_url,
        "KMO_BROKER_URL": settings.broker_url,
        "KMO_AUTH_REQUIRED": "false",
        "KMO_AUDIT_BUREAUS": json.dumps(sorted(settings.audit_bureaus)),
        "KMO_LOG_FORMAT": "json",
        **(extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "worker.entrypoints.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_new_user_registers_a_provider_through_the_command_line(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.ndjson"
    day = dt.date(2027, 1, 25)
    batch.write_text(
        "\n".join(
            json.dumps(m) for m in (s.request(KEY), s.declaration(KEY, day), s.audit(KEY, day))
        )
    )
    assert kmo(settings, "migrate").returncode == 0
    published = kmo(settings, "publish", str(batch))
    assert published.returncode == 0, published.stderr
    assert published.stdout.count("published ") == 3

    run = kmo(settings, "run", "--until-idle", "--today", "2027-02-01")
    assert run.returncode == 0, run.stderr
    handled = [json.loads(line) for line in run.stderr.splitlines() if '"message_handled"' in line]
    assert len(handled) == 3

    mailed = [json.loads(m.body) for m in bus.take("kmo.mailer")]
    assert [m["type"] for m in mailed] == ["decision.request_accepted", "decision.registered"]
    assert mailed[1]["data"]["period"] == {"start": "2027-02-01", "end": "2032-01-31"}

    shown = kmo(settings, "show", "BE1543.301.276")
    assert shown.returncode == 0, shown.stderr
    assert "DV.O000001" in shown.stdout
    assert "registered (since 2027-02-01)" in shown.stdout
    assert "2027-02-01 to 2032-01-31" in shown.stdout
    assert "requested → registered  [R1]" in shown.stdout


def test_publish_reads_standard_input_and_refuses_what_has_no_type(
    settings: config.Settings, bus: Bus
) -> None:
    lines = json.dumps(s.request(KEY)) + "\n{not json\n" + json.dumps({"id": "x"}) + "\n"
    published = kmo(settings, "publish", "-", stdin=lines)
    assert published.returncode == 1
    assert "message 2: not published: not JSON" in published.stderr
    assert "message 3: not published" in published.stderr
    assert bus.depth(settings.inbound_queue) == 1


def test_show_says_when_there_is_nothing(settings: config.Settings) -> None:
    assert kmo(settings, "migrate").returncode == 0
    shown = kmo(settings, "show", "0403170701")
    assert shown.returncode == 1
    assert "No registration" in shown.stdout


def test_run_refuses_an_unmigrated_postgresql_database(settings: config.Settings) -> None:
    # the `postgres` maintenance database has never been migrated
    bare = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    result = kmo(settings.model_copy(update={"database_url": bare}), "run", "--until-idle")
    assert result.returncode == 2
    assert "kmo-worker migrate" in result.stderr


def test_demo_needs_no_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMO_")}
    result = subprocess.run(
        [sys.executable, "-m", "worker.entrypoints.cli", "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "decision.registered " in result.stdout
    for reason in (
        "invalid_iban",
        "iban_not_sepa",
        "provider_is_audit_bureau",
        "department_not_allowed",
        "missing_user_right",
        "foreign_requester_needs_bis",
    ):
        assert f"reason {reason}" in result.stdout
    assert "1 message(s) dead-lettered" in result.stdout


def test_a_metrics_port_already_taken_stops_the_worker_with_one_line(
    settings: config.Settings,
) -> None:
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        assert kmo(settings, "migrate").returncode == 0
        done = kmo(settings, "run", extra={"KMO_METRICS_PORT": str(port)})
    finally:
        taken.close()
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert f"KMO_METRICS_PORT={port}" in line
    assert "Traceback" not in done.stderr
