"""Personal data in messages and events (R19): the fields that hold it, and its erasure.

A field is personal by its name, wherever it sits in a message or an event (`contact.email`,
`recipient.email`, `iban`, `requester.id_number`, `signed_by`), so a version that moves one
keeps it covered. A value found there is erased wherever else it was copied (a back-office
reason that quotes an e-mail address, an error that quotes a field), in the spellings it is
commonly written in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FIELDS = frozenset({"email", "iban", "id_number", "signed_by"})
MARKER = "[erased]"
MIN_LENGTH = 4  # shorter values (a stray "x" in a test) would erase unrelated text
_SEPARATORS = re.compile(r"[\s.\-]")


def scrub(value: Any) -> tuple[Any, set[str]]:
    """`value` (parsed JSON) with every personal field's value replaced by the marker; and
    the values it replaced."""
    found: set[str] = set()
    return _scrub(value, found), found


def _scrub(value: Any, found: set[str]) -> Any:
    if isinstance(value, dict):
        return {
            name: _taken(item, found) if name in FIELDS else _scrub(item, found)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item, found) for item in value]
    return value


def _taken(value: Any, found: set[str]) -> Any:
    if isinstance(value, str) and value != MARKER:
        found.add(value)
        return MARKER
    return value


def spellings(values: Iterable[str]) -> list[str]:
    """The values as given and without separators (an IBAN or a national number is written
    with and without spaces, dots and dashes), longest first, so that no shorter value
    breaks up a longer one before it is replaced."""
    every = set()
    for value in values:
        every.add(value)
        compact = _SEPARATORS.sub("", value)
        if compact.isalnum():  # a number, not an address
            every.add(compact)
    return sorted((v for v in every if len(v) >= MIN_LENGTH and v != MARKER), key=len, reverse=True)


def replaced(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of `values` (from `spellings`) replaced by the marker."""
    for value in values:
        if value in text:
            text = text.replace(value, MARKER)
    return text
