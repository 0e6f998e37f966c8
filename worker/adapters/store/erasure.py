"""R19 in the database: a registration's personal data erased from every row that holds it,
inside the transaction that records the erasure. The same SQL on both databases.

The rows are found through the registration's history: each row names the message that caused
it (the archive's key) and the events it published (whose ids follow from the cause). Dead
letters are found by the registration's key. The document itself the core has already erased.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Table, bindparam, select, update

from worker.adapters.store import port
from worker.adapters.store import tables as t
from worker.contracts import personal
from worker.contracts.envelope import event_id

HISTORY_TEXT = ("note", "reason", "reference")


def erase(db: Connection, erasures: Sequence[port.Erasure]) -> None:
    for erasure in erasures:
        _erase(db, erasure)


def _erase(db: Connection, erasure: port.Erasure) -> None:
    h = t.history.c
    history = db.execute(
        select(h.id, h.cause_id, h.events, *(h[name] for name in HISTORY_TEXT)).where(
            h.registration_id == erasure.registration_id
        )
    ).all()
    causes = sorted({row.cause_id for row in history})
    archived = _bodies(db, t.inbox, "message_id", causes)
    events = sorted({eid for row in history for eid in _event_ids(row.cause_id, row.events)})
    sent = _bodies(db, t.outbox, "event_id", events)
    # Each body parsed once: its personal fields marked, and what they held collected, so that
    # every body can then lose what any of them held (a name quoted in a free-text note).
    inbox, outbox = _scrubbed(archived), _scrubbed(sent)
    known = set(erasure.values).union(*(x[2] for x in (*inbox.values(), *outbox.values())))
    values = personal.spellings(known)
    _rewrite(db, t.inbox, "message_id", inbox, values)
    _rewrite(db, t.outbox, "event_id", outbox, values)
    changed = [
        {"b_id": row.id, **{f"b_{n}": _text(row._mapping[n], values) for n in HISTORY_TEXT}}
        for row in history
        if any(_text(row._mapping[n], values) != row._mapping[n] for n in HISTORY_TEXT)
    ]
    if changed:
        statement = (
            update(t.history)
            .where(h.id == bindparam("b_id"))
            .values({n: bindparam(f"b_{n}") for n in HISTORY_TEXT})
        )
        db.execute(statement, changed)
    _dead_letters(db, erasure, values)


def _event_ids(cause_id: str, types: Any) -> list[str]:
    listed = orjson.loads(types) if isinstance(types, str) else types or []
    return [event_id(cause_id, index, name) for index, name in enumerate(listed)]


def _bodies(db: Connection, table: Table, key: str, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    column = table.c[key]
    query = select(column, table.c.body).where(column.in_(ids), table.c.body.is_not(None))
    return {row[0]: row[1] for row in db.execute(query)}


# Per id: the body as stored, its document with the personal fields marked, the values they held.
Scrubbed = dict[str, tuple[str, Any, set[str]]]


def _scrubbed(bodies: dict[str, str]) -> Scrubbed:
    return {key: (body, *personal.scrub(orjson.loads(body))) for key, body in bodies.items()}


def _rewrite(db: Connection, table: Table, key: str, scrubbed: Scrubbed, values: list[str]) -> None:
    rows = []
    for identifier, (body, marked, _found) in scrubbed.items():
        clean = personal.replaced(orjson.dumps(marked).decode(), values)
        if clean != body:
            rows.append({"b_key": identifier, "b_body": clean})
    if rows:
        statement = (
            update(table).where(table.c[key] == bindparam("b_key")).values(body=bindparam("b_body"))
        )
        db.execute(statement, rows)


def _dead_letters(db: Connection, erasure: port.Erasure, values: list[str]) -> None:
    d = t.dead_letters.c
    enterprise_number, _unit, _department, service = erasure.key
    query = select(d.id, d.error).where(
        d.enterprise_number == enterprise_number, d.service == service
    )
    rows = [
        {"b_id": row.id, "b_error": personal.replaced(row.error, values)}
        for row in db.execute(query)
        if personal.replaced(row.error, values) != row.error
    ]
    if rows:
        statement = update(t.dead_letters).where(d.id == bindparam("b_id"))
        db.execute(statement.values(error=bindparam("b_error")), rows)


def _text(value: str | None, values: list[str]) -> str | None:
    return None if value is None else personal.replaced(value, values)
