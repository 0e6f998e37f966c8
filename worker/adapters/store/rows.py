"""How a registration row is read: shared by every query that reads one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, cast

from worker.adapters.store import documents, port
from worker.adapters.store import tables as t

# The document as the text it is stored as: pydantic parses it in one step, without a dict between.
DOCUMENT = cast(t.registrations.c.document, Text).label("document")


def stored(row: Any) -> port.Stored:
    return port.Stored(row.id, row.version, documents.load(row.document))
