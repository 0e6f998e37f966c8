"""The registration as the lifecycle sees it, and the context a decision is taken in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from worker.contracts.common import Key, Recipient, State
from worker.contracts.outbound import Period

TERMINAL = frozenset({State.REFUSED, State.STOPPED, State.EXPIRED, State.WITHDRAWN})
YEARS_REGISTERED = 5
YEARS_ADMITTED = 2
YEARS_EXTENSION = 3
MONTHS_TO_REACT = 6


class PendingAudit(BaseModel):
    """A passed or conditional audit that waits for the declaration of honour (R2)."""

    model_config = ConfigDict(frozen=True)

    report_id: str
    kind: str
    result: str
    audit_date: dt.date
    follow_up_deadline: dt.date | None = None


class Registration(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: Key
    number: str
    state: State
    state_since: dt.date
    cycle: int = 1
    starter: bool = False
    recipient: Recipient | None = None
    declaration_on: dt.date | None = None
    pending_audit: PendingAudit | None = None
    period: Period | None = None
    follow_up_deadline: dt.date | None = None
    reaction_deadline: dt.date | None = None
    failed_report_id: str | None = None
    reports_seen: tuple[str, ...] = ()
    bureau: str | None = None  # the audit bureau of record (R13); None: none known yet
    # R19: the business date its personal data was last erased (kept across cycles: the
    # archive of the cycles before it stays erased, so the life can no longer be replayed).
    erased_on: dt.date | None = None

    @property
    def is_live(self) -> bool:
        return self.state not in TERMINAL


@dataclass(frozen=True)
class NoticeOffsets:
    """Days ahead of a date at which a notice goes out (R9); configuration, not rules."""

    expiring: tuple[int, ...] = (90, 30)
    follow_up_due: tuple[int, ...] = (30,)
    reaction_due: tuple[int, ...] = (30,)
    starter_modules_due: tuple[int, ...] = (90,)


@dataclass(frozen=True)
class Context:
    """Everything a decision depends on besides the registration and the message."""

    today: dt.date
    audit_bureaus: frozenset[str] = frozenset()
    offsets: NoticeOffsets = field(default_factory=NoticeOffsets)
    back_office: frozenset[str] = frozenset()  # its broker accounts: they may retract (R17)
