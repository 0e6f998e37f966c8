"""`kmo-worker demo`: a small realistic batch through the real path on the embedded default.

It works in a fresh folder of its own, so it needs no server and can be run again and again.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

from kombu.messaging import Producer

from worker import samples
from worker.adapters import broker
from worker.bootstrap import bootstrap
from worker.config import EMBEDDED_BROKER, Settings
from worker.consumer.loop import Loop
from worker.service.clock import Clock

TODAY = dt.date(2027, 2, 1)
BUREAU = samples.APPOINTED_BUREAU


def batch() -> list[dict[str, Any]]:
    """Several providers, each showing one path of the procedure."""
    s = samples
    day = TODAY - dt.timedelta(days=10)
    peeters = s.key("1543301276")
    waiting = s.key("0995127057")
    conditional = s.key("0326541491", service="advice")
    starter = s.key("1662403915")
    failed = s.key("0746043430", service="advice")
    faculty = s.key("0240505560", department="FEB-01")
    return [
        s.request(peeters),
        s.declaration(peeters, day),
        s.audit(peeters, day),
        s.request(s.key("1121527955"), iban="BE68539007547035"),
        s.request(s.key("0888934823"), iban="TR330006100519786457841326"),
        s.request(s.key(BUREAU)),
        s.request(faculty, department_name="Faculteit Economie"),
        s.request(
            s.key("0649530410"),
            requester={
                "id_type": "insz",
                "id_number": s.NATIONAL_NUMBER,
                "user_right": "kmo-portefeuille-gebruiker",
            },
        ),
        s.request(
            s.key("1157924038"),
            organisation={"name": "Conseil SARL", "kind": "foreign_company", "country": "FR"},
        ),
        s.request(waiting),
        s.audit(waiting, day),
        s.request(conditional),
        s.declaration(conditional, day),
        s.audit(
            conditional,
            day,
            result="conditional",
            follow_up_deadline=TODAY + dt.timedelta(days=180),
            findings=["customer_satisfaction"],
        ),
        s.approval(conditional, TODAY),
        s.request(starter, starter=True),
        s.declaration(starter, day),
        s.audit(starter, day, kind="limited"),
        s.request(failed),
        s.audit(failed, day, result="failed", findings=["experience", "integrity"]),
    ]


def run(settings: Settings) -> int:
    folder = Path(tempfile.mkdtemp(prefix="kmo-demo-"))
    settings = settings.model_copy(
        update={
            "database_url": f"sqlite:///{folder / 'kmo-worker.sqlite3'}",
            "broker_url": EMBEDDED_BROKER,
            "broker_folder": folder / ".kmo-broker",  # the default, seen from the folder
            "today": TODAY,
            "auth_required": False,
            "audit_bureaus": frozenset({BUREAU}),
            "log_level": "error",
        }
    )
    app = bootstrap(settings, Clock(TODAY))
    app.store.migrate()
    with broker.connect(settings) as connection:
        broker.declare(connection, app.topology)
        producer = Producer(connection.default_channel)
        for message in batch():
            broker.publish_inbound(producer, json.dumps(message).encode(), message["type"], None)
        broker.publish_inbound(producer, b"{not json", "registration.requested", None)
    Loop(app).run(until_idle=True)
    with broker.connect(settings) as connection:
        broker.declare(connection, app.topology)
        mailed = [json.loads(body) for body in broker.take_all(connection, "kmo.mailer")]
        dead = broker.take_all(connection, broker.DEAD_LETTER_QUEUE)
    print(f"kmo-worker demo: {len(batch())} messages handled on {TODAY}; workspace {folder}\n")
    print(table(mailed))
    print(
        f"\n{len(dead)} message(s) dead-lettered to {broker.DEAD_LETTER_QUEUE}"
        " (the batch holds one that is not JSON)."
    )
    print(
        f"\nLook around (the workspace holds the default database and broker folder):\n"
        f"  cd {folder}\n"
        f"  kmo-worker find --today {TODAY} --state registered_conditionally"
        " --follow-up-before 2027-12-31\n"
        f"  kmo-worker explain DV.A000001 --today {TODAY}\n"
        f"  kmo-worker act extend DV.A000001 --today {TODAY} --deadline follow_up"
        " --until 2027-12-31 --actor me --reason 'appeal granted' --reference V/1 --dry-run"
    )
    return 0


def table(events: list[dict[str, Any]]) -> str:
    rows = [("event", "registration", "enterprise", "service", "state", "detail")]
    for event in events:
        data = event["data"]
        rows.append(
            (
                event["type"],
                data["registration_number"] or "-",
                data["registration"]["enterprise_number"],
                data["registration"]["service"],
                data["state"] or "-",
                _detail(data),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _detail(data: dict[str, Any]) -> str:
    if "reason" in data:
        return f"reason {data['reason']}"
    parts = []
    if "period" in data:
        parts.append(f"{data['period']['start']} to {data['period']['end']}")
    for field in ("follow_up_deadline", "reaction_deadline"):
        if field in data:
            parts.append(f"{field.replace('_', ' ')} {data[field]}")
    return "; ".join(parts)
