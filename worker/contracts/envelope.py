"""The CloudEvents 1.0 structured-JSON envelope, one model per message type."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, create_model

from worker.contracts.inbound import INBOUND
from worker.contracts.outbound import OUTBOUND

NAMESPACE = uuid.UUID("6f1c1d1e-5a0b-4f5e-8a51-7d0f3e0b6c2a")
_SEEDED = hashlib.sha1(NAMESPACE.bytes, usedforsecurity=False)  # RFC 4122 name-based: SHA-1


def event_id(cause_id: str, index: int, type_name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))`, exactly (a property test holds the two together),
    without building a `uuid.UUID`: the hash continues from the namespace's."""
    digest = _SEEDED.copy()
    digest.update(f"{cause_id}|{index}|{type_name}".encode())
    b = bytearray(digest.digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # variant RFC 4122
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class Outgoing(NamedTuple):
    """An outbound event as it is stored in the outbox and published: id, type, JSON body, and
    the trace context its body carries (None: none, or not known: read back from the outbox)."""

    id: str
    type: str
    body: str
    traceparent: str | None = None


# CloudEvents' Distributed Tracing extension: W3C Trace Context, version 00.
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


class Carried(NamedTuple):
    """A trace context as a message carries it (`traceparent`, `tracestate`)."""

    traceparent: str
    tracestate: str | None = None


class CloudEvent(BaseModel):
    """Inbound envelope: CloudEvents extension attributes are allowed and kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=200)]
    source: Annotated[str, Field(min_length=1, max_length=500)]
    type: str
    time: dt.datetime | None = None
    datacontenttype: Literal["application/json"] | None = None
    # The contract version the data follows (`worker/contracts/versions.py`); optional inbound.
    dataschema: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    data: Any


class OutboundEvent(BaseModel):
    """Outbound envelope: always names its cause, so consumers can trace and deduplicate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=200)]
    source: Annotated[str, Field(min_length=1, max_length=500)]
    type: str
    time: dt.datetime
    datacontenttype: Literal["application/json"]
    # The contract version of the event's data: the `$id` of its file in schemas/.
    dataschema: Annotated[str, Field(pattern=r"^urn:kmo:schema:[a-z_.]+:[0-9]+\.[0-9]+$")]
    causationid: Annotated[str, Field(min_length=1, max_length=300)]
    # The trace the event continues (#19), where tracing is on: mailers carry it on.
    traceparent: Annotated[str, Field(pattern=TRACEPARENT)] | None = None
    tracestate: Annotated[str, Field(max_length=512)] | None = None
    data: Any


def _envelope(base: type[BaseModel], type_name: str, data: type[BaseModel]) -> type[BaseModel]:
    title = "".join(part.capitalize() for part in type_name.replace("_", ".").split("."))
    literal: Any = Literal[type_name]  # a type built at run time: mypy cannot follow it
    return create_model(title, __base__=base, type=(literal, ...), data=(data, ...))


INBOUND_ENVELOPES: dict[str, type[BaseModel]] = {
    name: _envelope(CloudEvent, name, model) for name, model in INBOUND.items()
}
OUTBOUND_ENVELOPES: dict[str, type[BaseModel]] = {
    name: _envelope(OutboundEvent, name, model) for name, model in OUTBOUND.items()
}
