"""Outbound CloudEvents: deterministic ids, so handling the same cause twice yields the same ids."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from worker.contracts import versions
from worker.contracts.envelope import Carried, Outgoing, event_id
from worker.contracts.outbound import TYPE_OF, EventData
from worker.contracts.schemas import Validators


@functools.lru_cache(maxsize=4)
def _time_text(now: dt.datetime) -> str:
    """A batch stamps all its events with one time: formatted once."""
    return now.isoformat().replace("+00:00", "Z")


Check = Callable[[str, dict[str, Any]], None]


def wrap(
    events: Sequence[EventData],
    cause_id: str,
    source: str,
    now: dt.datetime,
    check: Check | None = None,
    carried: Carried | None = None,
) -> list[Outgoing]:
    """The serialised events, in order; `check` sees each envelope before it is
    serialised (the outbound contract check). orjson: compact UTF-8, not \\u-escaped.
    `carried`: the trace the events continue (#19), in each envelope."""
    wrapped = []
    traced = _traced(carried)
    for index, data in enumerate(events):
        type_name = TYPE_OF[type(data)]
        identifier = event_id(cause_id, index, type_name)
        body = {
            "specversion": "1.0",
            "id": identifier,
            "source": source,
            "type": type_name,
            "time": _time_text(now),
            "datacontenttype": "application/json",
            "dataschema": versions.URIS[type_name],
            "causationid": cause_id,
            **traced,
            "data": data.model_dump(mode="json"),
        }
        if check is not None:
            check(type_name, body)
        text = orjson.dumps(body).decode()
        wrapped.append(Outgoing(identifier, type_name, text, carried and carried.traceparent))
    return wrapped


def _traced(carried: Carried | None) -> dict[str, str]:
    if carried is None:
        return {}
    if carried.tracestate:
        return {"traceparent": carried.traceparent, "tracestate": carried.tracestate}
    return {"traceparent": carried.traceparent}


class OutboundContractError(Exception):
    """The core produced an event its schema rejects: a bug; the message is not acked as done."""


@dataclass(frozen=True)
class Envelopes:
    """How this worker wraps the events it records: its `source`, and, with `validators`, every
    event checked against its schema before it is stored."""

    source: str
    validators: Validators | None = None

    def wrap(
        self,
        events: Sequence[EventData],
        cause_id: str,
        now: dt.datetime,
        carried: Carried | None = None,
    ) -> list[Outgoing]:
        check = self._check if self.validators else None
        return wrap(events, cause_id, self.source, now, check, carried)

    def _check(self, type_name: str, envelope: dict[str, Any]) -> None:
        assert self.validators is not None
        violation = self.validators.check(type_name, envelope, own_time=True)
        if violation is not None:
            raise OutboundContractError(f"{type_name}: {violation}")
