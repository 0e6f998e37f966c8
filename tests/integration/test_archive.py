"""The archive: every accepted inbound message as received, written with its effects, through the
real broker with authentication on; who may act on a case (R14-R16); retention."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from tests.conftest import TODAY, Bus
from tests.integration.test_publishers import publish_as, run, secured, users  # noqa: F401
from worker import config
from worker import samples as s
from worker.adapters.store import tables as t
from worker.bootstrap import open_store

KEY = s.key("1543301276")


def _archive(settings: config.Settings) -> dict[str, dict[str, Any]]:
    store = open_store(settings.database_url)
    with store.engine.connect() as db:
        rows = {row.message_id: dict(row._mapping) for row in db.execute(select(t.inbox))}
    store.dispose()
    return rows


def test_each_accepted_message_is_archived_exactly_as_received_with_its_outcome(
    secured: config.Settings,  # noqa: F811
    users: dict[str, str],  # noqa: F811
    vhost: str,
    bus: Bus,
) -> None:
    request, audit = s.request(KEY), s.audit(KEY, TODAY)
    stray = s.declaration(s.key("0326541491"), TODAY)  # nobody requested this key
    publish_as(users["desk"], vhost, request)
    publish_as(users["bqa"], vhost, audit)
    publish_as(users["desk"], vhost, stray)
    publish_as(users["desk"], vhost, request)  # the same id again: a duplicate, archived once
    run(secured)
    archive = _archive(secured)
    assert set(archive) == {request["id"], audit["id"], stray["id"]}
    kept = archive[request["id"]]
    assert json.loads(kept["body"]) == request
    assert kept["body"] == json.dumps(request)  # byte for byte, as publish_as sent it
    assert (kept["publisher"], kept["routing_key"]) == (users["desk"], "registration.requested")
    assert (kept["business_date"], kept["outcome"]) == (TODAY, "handled")
    assert archive[audit["id"]]["registration_id"] == kept["registration_id"] is not None
    assert archive[audit["id"]]["publisher"] == users["bqa"]
    ignored = archive[stray["id"]]
    assert (ignored["outcome"], ignored["reason"]) == ("ignored", "unknown_registration")
    assert ignored["registration_id"] is None


def test_only_the_desk_withdraws_and_only_the_back_office_stops_or_extends(
    secured: config.Settings,  # noqa: F811
    users: dict[str, str],  # noqa: F811
    vhost: str,
    bus: Bus,
) -> None:
    publish_as(users["desk"], vhost, s.request(KEY))
    run(secured)
    bus.take("kmo.dead-letter")
    wrong = [
        (users["vlaio"], s.withdrawal(KEY)),
        (users["desk"], s.stop_order(KEY)),
        (users["bqa"], s.deadline_extension(KEY, "follow_up", TODAY)),
    ]
    for user, document in wrong:
        publish_as(user, vhost, document)
    run(secured)
    letters = bus.take("kmo.dead-letter")
    assert [m.headers["x-kmo-reason"] for m in letters] == ["unauthorized_publisher"] * 3
    assert not set(_archive(secured)) & {d["id"] for _u, d in wrong}
    withdrawal = s.withdrawal(KEY, reference="EL-1")
    publish_as(users["desk"], vhost, withdrawal)
    run(secured)
    (event,) = [e for e in bus.events() if e["type"] == "decision.withdrawn"]
    assert event["data"]["reference"] == "EL-1"
