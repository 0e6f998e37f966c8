"""A whole conditional registration, five years, through the CLI, RabbitMQ and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.conftest import Bus
from tests.e2e.test_cli import kmo
from worker import config
from worker import samples as s

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KEY = s.key("0326541491", service="advice")
D = dt.date


def test_request_to_expiry_with_every_notice(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    def publish(*documents: dict[str, object]) -> None:
        path = tmp_path / "batch.ndjson"
        path.write_text("\n".join(json.dumps(d) for d in documents))
        assert kmo(settings, "publish", str(path)).returncode == 0

    def run(today: D) -> list[dict[str, object]]:
        result = kmo(settings, "run", "--until-idle", "--today", today.isoformat())
        assert result.returncode == 0, result.stderr
        return [json.loads(m.body) for m in bus.take("kmo.mailer")]

    assert kmo(settings, "migrate").returncode == 0
    follow_up_deadline = D(2027, 6, 30)
    publish(
        s.request(KEY),
        s.declaration(KEY, D(2027, 1, 28)),
        s.audit(
            KEY,
            D(2027, 1, 30),
            result="conditional",
            follow_up_deadline=follow_up_deadline,
            findings=["knowledge"],
        ),
    )
    assert [e["type"] for e in run(D(2027, 2, 1))] == ["decision.request_accepted"]

    publish(s.approval(KEY, D(2027, 2, 10)))
    (decision,) = run(D(2027, 2, 10))
    assert decision["type"] == "decision.registered_conditionally"
    assert decision["data"]["period"] == {"start": "2027-02-10", "end": "2032-02-09"}
    assert decision["data"]["follow_up_deadline"] == "2027-06-30"

    assert run(D(2027, 5, 30)) == []  # the day before the notice is due
    (notice,) = run(D(2027, 5, 31))  # 30 days before the follow-up deadline
    assert (notice["type"], notice["data"]["days_left"]) == ("notice.follow_up_due", 30)

    publish(s.audit(KEY, D(2027, 6, 15), kind="follow_up"))
    (converted,) = run(D(2027, 6, 16))
    assert converted["type"] == "decision.converted"
    assert converted["data"]["notify"] is False  # "zonder verdere berichtgeving"
    assert converted["data"]["state"] == "registered"

    end = D(2032, 2, 9)
    (ninety,) = run(end - dt.timedelta(days=90))
    (thirty,) = run(end - dt.timedelta(days=30))
    assert [(n["type"], n["data"]["days_left"]) for n in (ninety, thirty)] == [
        ("notice.expiring", 90),
        ("notice.expiring", 30),
    ]
    assert run(end) == []  # the last day of the period is still registered
    (expired,) = run(end + dt.timedelta(days=1))
    assert expired["type"] == "decision.expired"
    assert expired["data"]["reason"] == "period_ended"
    assert run(end + dt.timedelta(days=400)) == []  # every timer fired once, and only once

    shown = kmo(settings, "show", "0326541491")
    assert shown.returncode == 0
    story = shown.stdout
    for line in (
        "expired (since 2032-02-10)",
        "awaiting_approval → registered_conditionally  [R3]",
        "registered_conditionally → registered  [R4]",
        "registered → expired  [R8]",
        "notice.follow_up_due",
        "deadline.period_end",
    ):
        assert line in story, f"{line!r} missing from:\n{story}"
