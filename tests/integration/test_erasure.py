"""R19 through the real RabbitMQ and PostgreSQL: a registration's life filled with personal data,
erased on request or on time, and then not one of its personal values left in any text or JSON
column of any table."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import JSON, Engine, String, Text, inspect, select, text

from tests.conftest import TODAY, Bus
from worker import config
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import bootstrap, open_store
from worker.consumer import retention
from worker.consumer.loop import Loop
from worker.contracts import personal
from worker.observability import metrics as m
from worker.service import cases
from worker.service.clock import Clock

pytestmark = pytest.mark.integration
D = dt.date
KEY = s.key("1543301276")
EMAIL = "griet.claes@peeters.example"
IBAN = "BE71 0961 2345 6769"
NATIONAL_NUMBER = "85.07.30-033.61"
SIGNATORY = "Griet Claes"
PERSONAL = (EMAIL, IBAN, NATIONAL_NUMBER, SIGNATORY)


def _run(settings: config.Settings, today: D) -> None:
    app = bootstrap(settings, Clock(today))
    assert Loop(app).run(until_idle=True) == 0
    app.store.engine.dispose()


def _life(settings: config.Settings, bus: Bus) -> str:
    """A registration's life: request, declaration, audit, a dead letter, a withdrawal whose
    reason quotes the e-mail address; closed on TODAY. Its registration number."""
    contact = {"email": EMAIL, "language": "nl"}
    requester = {"id_type": "insz", "id_number": NATIONAL_NUMBER, "user_right": s.USER_RIGHT}
    bus.publish(s.request(KEY, iban=IBAN, contact=contact, requester=requester))
    declaration = s.declaration(KEY, TODAY)
    declaration["data"]["signed_by"] = SIGNATORY
    bus.publish(declaration)
    bus.publish(s.audit(KEY, TODAY))
    bad = s.declaration(KEY, TODAY)  # a date that is a name: dead-lettered, quoting it
    bad["data"]["received_on"] = SIGNATORY
    bus.publish(bad)
    _run(settings, TODAY)
    bus.publish(s.withdrawal(KEY, reason=f"Asked by mail from {EMAIL}; no more training."))
    _run(settings, TODAY)
    store = open_store(settings.database_url)
    (found,) = store.find(KEY["enterprise_number"])
    assert found.registration.state.value == "withdrawn"
    store.dispose()
    return found.registration.number


def _where(engine: Engine, values: tuple[str, ...]) -> dict[str, set[str]]:
    """Every text and JSON column of every table in the database, with the values found in it
    (in any spelling `personal.spellings` knows)."""
    spellings = personal.spellings(values)
    found: dict[str, set[str]] = {}
    inspector = inspect(engine)
    with engine.connect() as db:
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                if not isinstance(column["type"], String | Text | JSON):
                    continue
                name = column["name"]
                query = text(f'SELECT CAST("{name}" AS text) FROM "{table}"')
                for (value,) in db.execute(query):
                    hits = {v for v in spellings if value and v in value}
                    if hits:
                        found.setdefault(f"{table}.{name}", set()).update(hits)
    return found


def test_erasure_on_request_leaves_no_personal_value_in_any_column(
    settings: config.Settings, bus: Bus
) -> None:
    number = _life(settings, bus)
    store = open_store(settings.database_url)
    before = _where(store.engine, PERSONAL)
    # The scan sees them where the life put them: the test could fail.
    assert {"inbox.body", "registrations.document", "history.reason"} <= set(before)
    assert "outbox.body" in before and "dead_letters.error" in before
    erased_before = m.REGISTRATIONS_ERASED.labels("on_request")._value.get()

    bus.publish(s.erasure_request(KEY), user=None)
    _run(settings, TODAY + dt.timedelta(days=3))

    assert _where(store.engine, PERSONAL) == {}
    assert m.REGISTRATIONS_ERASED.labels("on_request")._value.get() == erased_before + 1
    found = store.by_number(number)
    assert found is not None
    registration = found.registration
    assert registration.state.value == "withdrawn" and registration.recipient is None
    assert registration.erased_on == TODAY + dt.timedelta(days=3)
    story = cases.explain(store, found, TODAY + dt.timedelta(days=3))
    assert story["registration"]["erased_on"] == "2027-02-04"
    erasure = story["changes"][-1]
    assert (erasure["rule"], erasure["note"]) == ("R19", "personal data erased")
    assert erasure["cause"]["type"] == "registration.erasure_requested"
    # What was decided stays: every change, its date and its rule; the marker in the archive.
    assert [c["rule"] for c in story["changes"]][:3] == ["eligibility", "R2", "R1"]
    with store.engine.connect() as db:
        bodies = [json.loads(b) for b in db.scalars(select(t.inbox.c.body))]
    request = next(b for b in bodies if b["type"] == "registration.requested")
    assert request["data"]["iban"] == personal.MARKER
    assert request["data"]["organisation"]["name"] == "Opleidingen Peeters bv"
    assert _events(bus, "message.ignored") == []  # erasure answered nothing
    store.dispose()


def test_a_live_registration_is_not_erased_and_operations_hear_why(
    settings: config.Settings, bus: Bus
) -> None:
    bus.publish(s.request(KEY, contact={"email": EMAIL, "language": "nl"}))
    _run(settings, TODAY)
    bus.events()
    bus.publish(s.erasure_request(KEY))
    _run(settings, TODAY)
    (ignored,) = _events(bus, "message.ignored")
    assert ignored["data"]["reason"] == "registration_live"
    store = open_store(settings.database_url)
    assert EMAIL in str(_where(store.engine, (EMAIL,)))
    store.dispose()


def test_erasure_on_time_after_the_configured_years(settings: config.Settings, bus: Bus) -> None:
    _life(settings, bus)
    later = settings.model_copy(update={"erasure_years": 2})
    early = bootstrap(later, Clock(D(2029, 1, 31)))  # a day short of two years closed
    assert retention.Retention(early).run_pass().get("erased") == 0
    early.store.dispose()
    app = bootstrap(later, Clock(D(2029, 2, 1)))
    work = retention.Retention(app)
    assert work.run_pass().get("erased") == 1
    assert work.run_pass().get("erased") == 0  # erased once
    assert _where(app.store.engine, PERSONAL) == {}
    (found,) = app.store.find(KEY["enterprise_number"])
    story = cases.explain(app.store, found, D(2029, 2, 1))
    assert story["changes"][-1]["cause"]["kind"] == "retention"
    assert found.registration.erased_on == D(2029, 2, 1)
    app.store.engine.dispose()


def _events(bus: Bus, type_name: str) -> list[dict[str, Any]]:
    return [e for e in bus.events() if e["type"] == type_name]
