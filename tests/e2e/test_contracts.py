"""Contracts that evolve (#17), through the real command line, RabbitMQ and PostgreSQL: a field a
publisher added before the worker knew it is accepted and archived, refused when strict; a type
sent under another routing key is dead-lettered naming both."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import Bus
from tests.e2e.test_cli import kmo
from worker import config
from worker import samples as s

pytestmark = pytest.mark.e2e
D = dt.date
KEY = s.key("1662403915")


def test_a_report_with_a_field_the_worker_does_not_know_is_handled_and_kept(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    assert kmo(settings, "migrate").returncode == 0
    report = s.audit(KEY, D(2027, 1, 10))
    report["data"]["auditor_comment"] = "added by the bureau before the worker knew it"
    stricter = s.audit(KEY, D(2027, 1, 12), report_id="AR-2")
    stricter["data"]["auditor_comment"] = "refused by a strict worker"
    path = tmp_path / "batch.ndjson"
    path.write_text(
        "\n".join(
            json.dumps(d) for d in (s.request(KEY), s.declaration(KEY, D(2027, 1, 4)), report)
        )
    )
    assert kmo(settings, "publish", str(path)).returncode == 0
    assert kmo(settings, "run", "--until-idle", "--today", "2027-01-11").returncode == 0
    assert [e["type"] for e in bus.events()][-1] == "decision.registered"
    engine = create_engine(settings.database_url)
    with engine.connect() as db:
        body = db.execute(
            text("SELECT body FROM inbox WHERE message_id = :id"), {"id": report["id"]}
        ).scalar_one()
    engine.dispose()
    assert json.loads(body)["data"]["auditor_comment"].startswith("added by the bureau")

    # The same field, to a worker told to be strict: dead-lettered, the field named.
    bus.publish(stricter)
    strict = {"KMO_STRICT_CONTRACTS": "true"}
    result = kmo(settings, "run", "--until-idle", "--today", "2027-01-12", extra=strict)
    assert result.returncode == 0, result.stderr
    (letter,) = bus.take("kmo.dead-letter")
    headers = letter.headers or {}
    assert headers["x-kmo-reason"] == "schema_violation"
    assert "/data/auditor_comment" in headers["x-kmo-error"]


def test_a_declaration_sent_as_a_request_is_dead_lettered_naming_both(
    settings: config.Settings, bus: Bus
) -> None:
    assert kmo(settings, "migrate").returncode == 0
    declaration = s.declaration(KEY, D(2027, 1, 4))
    bus.publish(declaration, routing_key="registration.requested")
    assert kmo(settings, "run", "--until-idle").returncode == 0
    (letter,) = bus.take("kmo.dead-letter")
    error = (letter.headers or {})["x-kmo-error"]
    assert "'declaration.received'" in error and "'registration.requested'" in error
    assert bus.events() == []


def test_versions_through_the_broker_and_a_document_of_the_previous_release(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    """A newer minor is handled, an unknown major dead-lettered naming what is read, and a
    registration whose stored document predates document versions goes on as before."""
    assert kmo(settings, "migrate").returncode == 0
    bus.publish(s.request(KEY))
    bus.publish(s.declaration(KEY, D(2027, 1, 4)))
    assert kmo(settings, "run", "--until-idle", "--today", "2027-01-04").returncode == 0
    engine = create_engine(settings.database_url)
    with engine.begin() as db:  # as the release before document versions wrote it
        stored = db.execute(text("SELECT CAST(document AS text) FROM registrations")).scalar_one()
        stored = json.loads(stored)
        assert stored.pop("document_version") == 2
        update = text("UPDATE registrations SET document = CAST(:d AS json)")
        db.execute(update, {"d": json.dumps(stored)})
    engine.dispose()

    newer = s.audit(KEY, D(2027, 1, 10)) | {"dataschema": "urn:kmo:schema:audit.reported:1.4"}
    unknown = s.audit(KEY, D(2027, 1, 10), report_id="AR-9")
    unknown["dataschema"] = "urn:kmo:schema:audit.reported:2.0"
    bus.publish(newer)
    bus.publish(unknown)
    assert kmo(settings, "run", "--until-idle", "--today", "2027-01-11").returncode == 0
    assert [e["type"] for e in bus.events()][-1] == "decision.registered"
    (letter,) = bus.take("kmo.dead-letter")
    assert "it accepts urn:kmo:schema:audit.reported:1.x" in (letter.headers or {})["x-kmo-error"]
