"""The inbox: the CloudEvents ids of the messages already handled (the idempotency keys)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select

from worker.adapters import tables as t


def seen_many(db: Connection, message_ids: Iterable[str]) -> set[str]:
    wanted = list(set(message_ids))
    if not wanted:
        return set()
    query = select(t.inbox.c.message_id).where(t.inbox.c.message_id.in_(wanted))
    return set(db.execute(query).scalars())


def remember_many(db: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        db.execute(insert(t.inbox), list(rows))
