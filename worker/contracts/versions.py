"""Each message type's contract version, MAJOR.MINOR, and the `dataschema` URI that names it.

A minor version adds what a tolerant reader may ignore (an optional field); a major version
changes what was there. An event carries the `dataschema` of its type's version, equal to the
`$id` of its file in schemas/. An inbound message may carry one: any minor version of a major
the worker accepts is read (newer minors tolerantly), another major is a `schema_violation`
that names the versions accepted. Raise a type's version here, in the one place.
"""

from __future__ import annotations

import re

from worker.contracts.inbound import INBOUND
from worker.contracts.outbound import OUTBOUND

PREFIX = "urn:kmo:schema:"
FIRST = "1.0"  # every type's version when versions began (2026-12-02)
CURRENT: dict[str, str] = dict.fromkeys((*INBOUND, *OUTBOUND), FIRST)
URI = re.compile(r"^urn:kmo:schema:(?P<type>[a-z_.]+):(?P<major>[0-9]+)\.(?P<minor>[0-9]+)$")


def uri(type_name: str) -> str:
    return f"{PREFIX}{type_name}:{CURRENT[type_name]}"


URIS = {name: uri(name) for name in CURRENT}  # built once: every event names one


def major(type_name: str) -> int:
    return int(CURRENT[type_name].split(".")[0])


def problem(type_name: str, dataschema: object) -> str | None:
    """Why an inbound message's `dataschema` is not one the worker reads (None: it is, or none
    is given)."""
    if dataschema is None:
        return None
    accepted = f"{PREFIX}{type_name}:{major(type_name)}.x"
    found = URI.match(dataschema) if isinstance(dataschema, str) else None
    if found is None:
        return f"dataschema {dataschema!r} is not of the form {PREFIX}<type>:<major>.<minor>"
    if found["type"] != type_name:
        return f"dataschema names type {found['type']!r}, the message is {type_name!r}"
    if int(found["major"]) != major(type_name):
        return f"dataschema {dataschema} is not a version this worker reads; it accepts {accepted}"
    return None
