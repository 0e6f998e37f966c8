"""What a decision yields, and the helpers that build its events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from worker.contracts.common import Key, State
from worker.contracts.inbound import InboundData
from worker.contracts.outbound import EventData, Ignored
from worker.domain.model import Registration


@dataclass(frozen=True)
class Message:
    """An inbound message as the core sees it: its CloudEvents id, its validated data and the
    broker account that published it (None where the broker does not authenticate)."""

    id: str
    data: InboundData
    publisher: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The registration after the decision (None: still none), the events to publish, and the
    rule that decided, for the history (R12)."""

    registration: Registration | None
    events: tuple[EventData, ...]
    rule: str
    note: str = ""


def event(
    model: type[EventData], registration: Registration, *, notify: bool = True, **extra: Any
) -> EventData:
    return model(
        registration=registration.key,
        registration_number=registration.number,
        state=registration.state,
        notify=notify,
        recipient=registration.recipient,
        **extra,
    )


def ignored(registration: Registration | None, key: Key, message: Message, reason: str) -> Outcome:
    """R11: the message changes nothing; operations learn why through `message.ignored`."""
    notice = Ignored(
        registration=key,
        registration_number=registration.number if registration else None,
        state=registration.state if registration else None,
        notify=False,
        recipient=registration.recipient if registration else None,
        reason=reason,
        ignored_id=message.id,
    )
    return Outcome(registration, (notice,), "R11", reason)


def enter(registration: Registration, state: State, today: dt.date, **changes: Any) -> Registration:
    return registration.model_copy(update={"state": state, "state_since": today, **changes})
