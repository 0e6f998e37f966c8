"""Cases over five years through the real command line, RabbitMQ and PostgreSQL: find them,
explain them, act on them (withdraw, stop, extend), each act visible in `explain` and as an event
on kmo.events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Bus
from tests.e2e.test_cli import kmo
from worker import config
from worker import samples as s

pytestmark = pytest.mark.e2e
D = dt.date
SOON = s.key("0326541491", service="advice")  # conditional, follow-up due next month
LATER = s.key("0746043430", service="advice")  # conditional, follow-up due in the autumn
FULL = s.key("1543301276")  # registered
FAILED = s.key("1662403915")  # failed audit, reacting


def test_an_operator_finds_explains_and_acts_on_cases(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    def publish(*documents: dict[str, Any]) -> None:
        path = tmp_path / "batch.ndjson"
        path.write_text("\n".join(json.dumps(d) for d in documents))
        result = kmo(settings, "publish", str(path))
        assert result.returncode == 0, result.stderr

    def run(today: D) -> list[dict[str, Any]]:
        result = kmo(settings, "run", "--until-idle", "--today", today.isoformat())
        assert result.returncode == 0, result.stderr
        return bus.events()

    def cli(*args: str) -> str:
        result = kmo(settings, *args, "--today", "2027-02-01")
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert kmo(settings, "migrate").returncode == 0
    day = D(2027, 1, 20)
    publish(
        *(s.request(k) for k in (SOON, LATER, FULL, FAILED)),
        *(s.declaration(k, day) for k in (SOON, LATER, FULL, FAILED)),
        s.audit(SOON, day, result="conditional", follow_up_deadline=D(2027, 3, 20)),
        s.audit(LATER, day, result="conditional", follow_up_deadline=D(2027, 9, 30)),
        s.audit(FULL, day),
        s.audit(FAILED, day, result="failed", report_id="AR-F1"),
        s.approval(SOON, D(2027, 2, 1)),
        s.approval(LATER, D(2027, 2, 1)),
    )
    run(D(2027, 2, 1))
    numbers = {
        json.loads(line)["enterprise_number"]: json.loads(line)["registration_number"]
        for line in cli("find", "--json").splitlines()
    }
    soon, later, full, failed = (
        numbers[k["enterprise_number"]] for k in (SOON, LATER, FULL, FAILED)
    )

    # "Which conditional registrations must have their follow-up by the end of next month?"
    found = cli(
        "find",
        "--state",
        "registered_conditionally",
        "--follow-up-before",
        "end-of-next-month",
        "--json",
    )
    assert [json.loads(line)["registration_number"] for line in found.splitlines()] == [soon]
    table = cli("find", "--state", "registered_conditionally")
    assert soon in table and later in table and full not in table

    # VLAIO stops the full registration for an integrity breach.
    stopped = cli(
        "act",
        "stop",
        full,
        "--actor",
        "vlaio:jdoe",
        "--reference",
        "VLAIO/2027/123",
        "--reason",
        "Integrity: invoices for training that was never given",
    )
    assert "registered → stopped" in stopped and "published" in stopped
    # The desk withdraws the failed request at the provider's wish.
    cli(
        "act",
        "withdraw",
        failed,
        "--actor",
        "e-loket:u7",
        "--reason",
        "gives up",
        "--reference",
        "EL-9",
    )
    # The back office moves the near follow-up deadline after an appeal: shown first, then done.
    extend = ("act", "extend", soon, "--deadline", "follow_up", "--until", "2027-06-30")
    extend += (
        "--actor",
        "vlaio:jdoe",
        "--reason",
        "appeal granted",
        "--reference",
        "VLAIO/2027/200",
    )
    preview = cli(*extend, "--dry-run")
    assert "schedules deadline.follow_up due 2027-07-01" in preview
    cli(*extend)
    published = run(D(2027, 2, 2))
    events = {e["type"]: e["data"] for e in published}
    # The dry run published nothing: one extension, the one published after it.
    assert [e["type"] for e in published].count("decision.deadline_extended") == 1
    assert events["decision.stopped"]["reason"] == "stopped_by_vlaio"
    assert events["decision.stopped"]["reference"] == "VLAIO/2027/123"
    assert events["decision.withdrawn"]["state"] == "withdrawn"
    extended = events["decision.deadline_extended"]
    assert (extended["previous"], extended["until"]) == ("2027-03-20", "2027-06-30")

    # The old deadline passes: nothing stops the extended registration.
    assert not [e for e in run(D(2027, 3, 25)) if e["type"] == "decision.stopped"]

    # "Why was it stopped?"
    why = cli("explain", full)
    for line in (
        "registered → stopped  [R15: VLAIO stops a registration]",
        "reference: VLAIO/2027/123",
        "actor: vlaio:jdoe",
        "decision.stopped",
        "nothing: no deadline or notice is pending",
    ):
        assert line in why, f"{line!r} missing from:\n{why}"
    story = json.loads(cli("explain", soon, "--json"))
    (moved,) = [c for c in story["changes"] if c["rule"] == "R16"]
    assert moved["cause"]["reference"] == "VLAIO/2027/200"
    assert moved["events"][0]["type"] == "decision.deadline_extended"
    assert moved["events"][0]["sent_at"] is not None
    assert {n["kind"]: n["deadline"] for n in story["next"]}["deadline.follow_up"] == "2027-06-30"
    assert "withdrawn" in cli("find", "--state", "withdrawn")


def test_acts_the_rules_do_not_allow_are_refused_with_a_reason(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    assert kmo(settings, "migrate").returncode == 0
    path = tmp_path / "batch.ndjson"
    path.write_text("\n".join(json.dumps(d) for d in (s.request(FULL),)))
    assert kmo(settings, "publish", str(path)).returncode == 0
    assert kmo(settings, "run", "--until-idle").returncode == 0

    # A request in the procedure is not a registration to stop; an earlier date is no extension.
    stop = kmo(
        settings, "act", "stop", "1543301276", "--actor", "a", "--reason", "r", "--reference", "x"
    )
    assert stop.returncode == 1 and "not_registered" in stop.stdout
    assert "not published" in stop.stderr
    unknown = kmo(settings, "explain", "DV.O999999")
    assert unknown.returncode == 1 and "no registration DV.O999999" in unknown.stderr
    wrong_date = kmo(settings, "find", "--end-before", "31/12/2027")
    assert wrong_date.returncode == 2 and "--end-before" in wrong_date.stderr

    # Published by hand anyway: the worker answers message.ignored and changes nothing.
    path.write_text(json.dumps(s.stop_order(FULL)))
    assert kmo(settings, "publish", str(path)).returncode == 0
    assert kmo(settings, "run", "--until-idle").returncode == 0
    ignored = [e for e in bus.events() if e["type"] == "message.ignored"]
    assert [e["data"]["reason"] for e in ignored] == ["not_registered"]

    # A malformed one is dead-lettered, and explain shows it beside the registration.
    bad = s.deadline_extension(FULL, "follow_up", D(2027, 6, 1))
    bad["data"]["until"] = "next summer"
    path.write_text(json.dumps(bad))
    assert kmo(settings, "publish", str(path)).returncode == 0
    assert kmo(settings, "run", "--until-idle").returncode == 0
    story = json.loads(kmo(settings, "explain", "1543301276", "--json").stdout)
    assert [(d["message_id"], d["reason"]) for d in story["dead_letters"]] == [
        (bad["id"], "schema_violation")
    ]
    assert [m["reason"] for m in story["ignored"]] == ["not_registered"]
