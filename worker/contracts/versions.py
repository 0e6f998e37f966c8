"""Each message type's contract version, MAJOR.MINOR, and the `dataschema` URI that names it.

A minor version adds what a tolerant reader may ignore (an optional field); a major version
changes what was there. An event carries the `dataschema` of its type's version, equal to the
`$id` of its file in schemas/. An inbound message may carry one: any minor version of a major
the worker reads is taken (newer minors tolerantly); an older major is validated against its
own file (`<type>@<major>.json`) and brought to the current shape by its upcasters
(`upcasters.py`); another major is a `schema_violation` that names the versions read. Raise a
type's version here, in the one place.
"""

from __future__ import annotations

import re
from typing import Any

from worker.contracts.inbound import INBOUND
from worker.contracts.outbound import OUTBOUND
from worker.contracts.upcasters import UPCASTERS

PREFIX = "urn:kmo:schema:"
FIRST = "1.0"  # every type's version when versions began (2026-12-02)
CURRENT: dict[str, str] = dict.fromkeys((*INBOUND, *OUTBOUND), FIRST)
URI = re.compile(r"^urn:kmo:schema:(?P<type>[a-z_.]+):(?P<major>[0-9]+)\.(?P<minor>[0-9]+)$")


def uri(type_name: str) -> str:
    return f"{PREFIX}{type_name}:{CURRENT[type_name]}"


URIS = {name: uri(name) for name in CURRENT}  # built once: every event names one


def major(type_name: str) -> int:
    return int(CURRENT[type_name].split(".")[0])


def claimed(type_name: str, dataschema: object) -> int:
    """The major a message says its data follows (none said: the current one). Call after
    `problem` has found nothing wrong with it."""
    found = URI.match(dataschema) if isinstance(dataschema, str) else None
    return int(found["major"]) if found else major(type_name)


def accepted(type_name: str) -> list[int]:
    """The majors read: the current one, and each older one with upcasters all the way up."""
    current = major(type_name)
    older = range(current - 1, 0, -1)
    chained = [m for m in older if all((type_name, n) in UPCASTERS for n in range(m, current))]
    return [current, *chained]


def problem(type_name: str, dataschema: object) -> str | None:
    """Why an inbound message's `dataschema` is not one the worker reads (None: it is, or none
    is given)."""
    if dataschema is None:
        return None
    found = URI.match(dataschema) if isinstance(dataschema, str) else None
    if found is None:
        return f"dataschema {dataschema!r} is not of the form {PREFIX}<type>:<major>.<minor>"
    if found["type"] != type_name:
        return f"dataschema names type {found['type']!r}, the message is {type_name!r}"
    majors = accepted(type_name)
    if int(found["major"]) not in majors:
        named = ", ".join(f"{PREFIX}{type_name}:{m}.x" for m in majors)
        return f"dataschema {dataschema} is not a version this worker reads; it accepts {named}"
    return None


def schema_name(type_name: str, major_version: int) -> str:
    """The file in schemas/ (without `.json`) of a type's major: `<type>@<major>` for an older
    one still read."""
    return type_name if major_version == major(type_name) else f"{type_name}@{major_version}"


def current_data(type_name: str, document: dict[str, Any]) -> dict[str, Any]:
    """A message's `data` in the current major's shape, through the upcasters from the major it
    claims (`problem` has accepted it)."""
    data: dict[str, Any] = document["data"]
    for old in range(claimed(type_name, document.get("dataschema")), major(type_name)):
        data = UPCASTERS[(type_name, old)](data)
    return data
