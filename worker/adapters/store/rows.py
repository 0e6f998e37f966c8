"""How a registration row is read: shared by every query that reads one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, cast

from worker.adapters.store import port
from worker.adapters.store import tables as t
from worker.domain.model import Registration

# The document as the text it is stored as: pydantic parses it in one step, without a dict between.
DOCUMENT = cast(t.registrations.c.document, Text).label("document")


def stored(row: Any) -> port.Stored:
    return port.Stored(row.id, row.version, Registration.model_validate_json(row.document))
