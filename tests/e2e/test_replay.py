"""R17 and R18 through the real command line, RabbitMQ and PostgreSQL, with the business date
moving forward: a failed audit retracted three weeks later, and a changed notice offset seen by
`replay --what-if` and, after `reschedule`, in the notices sent."""

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
from worker.contracts.envelope import event_id

pytestmark = pytest.mark.e2e
D = dt.date
KEY = s.key("1662403915")
SIXTY = {"KMO_NOTICE_OFFSETS": json.dumps({"expiring": [60]})}


class Desk:
    """The upstream systems and the operator, through the CLI."""

    def __init__(self, settings: config.Settings, bus: Bus, folder: Path) -> None:
        self.settings, self.bus, self.folder = settings, bus, folder
        assert kmo(settings, "migrate").returncode == 0

    def publish(self, *documents: dict[str, Any]) -> None:
        path = self.folder / "batch.ndjson"
        path.write_text("\n".join(json.dumps(d) for d in documents))
        self.cli("publish", str(path))

    def run(self, today: dt.date, extra: dict[str, str] | None = None) -> list[dict[str, Any]]:
        self.cli("run", "--until-idle", "--today", today.isoformat(), extra=extra)
        return self.bus.events()

    def cli(self, *args: str, extra: dict[str, str] | None = None, returncode: int = 0) -> str:
        result = kmo(self.settings, *args, extra=extra)
        assert result.returncode == returncode, result.stderr
        return result.stdout


def test_a_failed_audit_retracted_three_weeks_later_is_corrected_once(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    desk = Desk(settings, bus, tmp_path)
    desk.publish(s.request(KEY), s.declaration(KEY, D(2027, 1, 4)))
    desk.run(D(2027, 1, 4))
    report = s.audit(KEY, D(2027, 1, 10), result="failed", report_id="AR-1")
    desk.publish(report)
    (failed,) = desk.run(D(2027, 1, 11))
    assert failed["type"] == "decision.audit_failed"
    number = failed["data"]["registration_number"]

    # Three weeks later the bureau's report turns out to be about another provider.
    preview = desk.cli(
        "act", "retract", number, "--message-id", report["id"], "--reason",
        "The report was filed for the wrong provider.", "--today", "2027-02-01", "--json",
    )  # fmt: skip
    assert json.loads(preview)["after"]["state"] == "requested"
    events = desk.run(D(2027, 2, 1))
    assert [e["type"] for e in events] == ["decision.corrected"]
    corrected = events[0]["data"]
    assert (corrected["previous_state"], corrected["state"]) == ("audit_failed", "requested")
    assert corrected["superseded"] == [failed["id"]]
    assert corrected["reaction_deadline"] is None

    story = json.loads(desk.cli("explain", number, "--json", "--today", "2027-02-01"))
    assert story["next"] == []  # the reaction deadline and its notice are gone
    correction = story["changes"][-1]
    assert (correction["rule"], correction["retracted_id"]) == ("R17", report["id"])
    assert story["changes"][-2]["events"][0]["superseded_by"] == correction["cause"]["id"]

    # The six months pass: nothing is refused and no reminder goes out.
    assert desk.run(D(2027, 7, 12)) == []
    # A passed re-audit registers it.
    desk.publish(s.audit(KEY, D(2027, 7, 20), report_id="AR-2"))
    (registered,) = desk.run(D(2027, 7, 21))
    assert registered["type"] == "decision.registered"
    mailed = [json.loads(m.body)["type"] for m in bus.take("kmo.mailer")]
    assert mailed.count("decision.corrected") == 1
    assert "notice.reaction_due" not in mailed and "decision.refused" not in mailed


def test_a_changed_notice_offset_shows_in_what_if_and_after_reschedule_in_the_notices(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    desk = Desk(settings, bus, tmp_path)
    desk.publish(s.request(KEY), s.declaration(KEY, D(2027, 1, 4)), s.audit(KEY, D(2027, 1, 10)))
    (_, registered) = desk.run(D(2027, 1, 11))
    end = D.fromisoformat(registered["data"]["period"]["end"])
    number = registered["data"]["registration_number"]

    assert json.loads(desk.cli("replay", "--what-if", "--json"))["totals"]["same"] == 1
    lines = desk.cli("replay", "--what-if", "--json", extra=SIXTY, returncode=1).splitlines()
    differs, totals = json.loads(lines[0]), json.loads(lines[-1])["totals"]
    assert (differs["registration_number"], totals["timers"]) == (number, 1)
    assert len(differs["timers"]["cancelled"]) == 2 and len(differs["timers"]["added"]) == 1

    counted = json.loads(desk.cli("reschedule", "--dry-run", "--json", extra=SIXTY))
    assert (counted["cancelled"], counted["added"]) == (2, 1)
    done = json.loads(desk.cli("reschedule", "--json", extra=SIXTY))
    assert (done["changed"], done["cancelled"], done["added"]) == (1, 2, 1)
    assert json.loads(desk.cli("reschedule", "--json", extra=SIXTY))["changed"] == 0

    assert desk.run(end - dt.timedelta(days=90), extra=SIXTY) == []  # the old offset is gone
    (notice,) = desk.run(end - dt.timedelta(days=60), extra=SIXTY)
    assert notice["type"] == "notice.expiring" and notice["data"]["days_left"] == 60
    cause = f"{number}:timer:notice.expiring:{end.isoformat()}:60"
    assert notice["id"] == event_id(cause, 0, "notice.expiring")
