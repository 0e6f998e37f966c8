"""A registration as it is stored: the domain `Registration` as JSON, led by the version of the
document's shape. A document of an older version (or of none: stored before versions, version 1)
is upcast on read, one version at a time, so the core only ever sees the current shape; each
store writes and reads documents through here only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from worker.domain.model import Registration

VERSION = 2  # raise with a change of `Registration`'s shape, and add its upcaster below
FIELD = "document_version"
# From version n to n + 1, on the parsed document (a test holds the chain to the fixtures of
# tests/fixtures/documents/, written by the release before each change).
UPCASTERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: lambda document: {**document, "erased_on": None},  # 2: R19, nothing erased yet
}
_LEADING = re.compile(r'\{"document_version": ?(\d+)')


def dump(registration: Registration) -> str:
    """The document's JSON text, its version first (read back without parsing it twice)."""
    return f'{{"{FIELD}":{VERSION},{registration.model_dump_json()[1:]}'


def as_dict(registration: Registration) -> dict[str, Any]:
    return {FIELD: VERSION, **registration.model_dump(mode="json")}


def load(text: str) -> Registration:
    found = _LEADING.match(text)
    if (int(found[1]) if found else 1) == VERSION:
        return Registration.model_validate_json(text)  # the key itself is ignored by the model
    return Registration.model_validate(upcast(orjson.loads(text)))


def upcast(document: dict[str, Any]) -> dict[str, Any]:
    """A parsed document of any version in the current shape, without its version."""
    version = int(document.pop(FIELD, 1))
    while version < VERSION:
        document = UPCASTERS[version](document)
        version += 1
    return document
