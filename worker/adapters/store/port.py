"""The store's one interface: what the service layer, the engine and the CLI ask of the database.

Two implementations stand behind it, `postgres.PostgresStore` and `sqlite.SqliteStore`; the
composition root (`worker.bootstrap.open_store`) picks one from the URL, and nothing else in the
worker knows which database runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Engine

from worker.contracts.common import Department, Key
from worker.contracts.envelope import Outgoing
from worker.domain.model import Registration
from worker.domain.schedule import Timer

KeyTuple = tuple[str, str, str, str]  # enterprise number, unit kind, department id, service
PREFIX = {"training": "DV.O", "advice": "DV.A"}


def key_tuple(key: Key) -> KeyTuple:
    unit = key.unit
    department = unit.department_id if isinstance(unit, Department) else ""
    return (key.enterprise_number, unit.kind, department, key.service)


CASE_COLUMNS = (
    *("bureau", "cycle", "period_end", "follow_up_deadline", "reaction_deadline"),
    *("terminal_since", "erased_on"),
)


def columns(registration: Registration) -> dict[str, Any]:
    """What `find` filters on and retention selects by (R19, R20), as columns beside the
    document (each store writes them)."""
    period = registration.period
    return {
        "bureau": registration.bureau,
        "cycle": registration.cycle,
        "period_end": period.end if period else None,
        "follow_up_deadline": registration.follow_up_deadline,
        "reaction_deadline": registration.reaction_deadline,
        "terminal_since": None if registration.is_live else registration.state_since,
        "erased_on": registration.erased_on,
    }


LAST_NUMBER = 999_999  # a service's last registration number: `DV.O` + 6 digits (R21)


def numbers_up_to(service: str, last: int, count: int) -> list[str | None]:
    """The `count` registration numbers of a service that end with counter value `last`; None
    for each past `LAST_NUMBER`, which the format has no number for (R21)."""
    prefix = PREFIX[service]
    return [
        f"{prefix}{n:06d}" if n <= LAST_NUMBER else None for n in range(last - count + 1, last + 1)
    ]


class NumbersExhaustedError(Exception):
    """A service's registration numbers are used up (R21): the request that needs one is
    dead-lettered `numbers_exhausted`, kept for a re-drive once a longer format is agreed."""

    def __init__(self, service: str) -> None:
        super().__init__(
            f"no {service} registration number left: {PREFIX[service]}{LAST_NUMBER} is the last"
            " the contract's format allows (R21)"
        )
        self.service = service


class StaleRegistrationError(Exception):
    """Another transaction changed the registration since it was read; retry the message."""


@dataclass(frozen=True)
class Stored:
    id: int
    version: int
    registration: Registration


@dataclass
class Read:
    """What a batch of messages needs before the core decides."""

    seen: set[str] = field(default_factory=set)  # message ids handled before
    stored: dict[KeyTuple, Stored] = field(default_factory=dict)  # locked until commit
    numbers: dict[str, list[str | None]] = field(default_factory=dict)  # drawn, in order (R21)
    ids: list[int] = field(default_factory=list)  # for the registrations the batch creates


class DueTimer(NamedTuple):
    id: int
    registration_id: int
    timer: Timer
    traceparent: str | None = None  # of the message that set it (#19)


class Claimed(NamedTuple):
    """Due timers in due order, with their registrations, all locked until commit."""

    dues: list[DueTimer]
    registrations: dict[int, Stored]
    # As many were due as the claim asked for: more may be. Not `len(dues) == limit`: a timer
    # another sweep fired after the claim's snapshot is dropped from a full claim (PostgreSQL).
    full: bool


class Lived(NamedTuple):
    """One step of a registration's life as stored: a history row, with the archived message
    that caused it (None: a timer caused it, or the body is no longer kept)."""

    business_date: dt.date
    cause_id: str
    cause_type: str
    events: tuple[str, ...]  # the types of the events it published
    body: str | None
    publisher: str | None


class Life(NamedTuple):
    """A registration with everything that happened to it and its stored timers (R17, R18)."""

    stored: Stored
    lived: list[Lived]
    timers: dict[Timer, bool]  # whether each fired


@dataclass(frozen=True)
class Applying:
    """How far the stored timers follow the settings (R18): `applied` is the fingerprint they
    all follow (None: not known), `applying` the one being applied, up to registration id
    `after_id`."""

    applied: str | None
    applying: str | None
    after_id: int


class Erasure(NamedTuple):
    """R19: a registration whose personal data is erased in this transaction, and the values
    known to be its (the core has already taken them out of its document)."""

    registration_id: int
    key: KeyTuple
    values: frozenset[str]


class Pruned(NamedTuple):
    """A batch of a pass from a table's head: rows deleted, and where the next batch starts
    (None: the pass is done)."""

    rows: int
    after: int | None


@dataclass
class Writes:
    """Everything one transaction writes, handed over at once."""

    inserted: list[tuple[int, Registration]] = field(default_factory=list)  # ids from `Read.ids`
    changed: list[tuple[int, int, Registration]] = field(default_factory=list)  # id, version read
    fired: list[int] = field(default_factory=list)  # timer ids
    cancel: list[tuple[int, Timer]] = field(default_factory=list)  # registration id, timer
    add: list[tuple[int, Timer]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[Outgoing] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    returned: dict[str, int] = field(default_factory=dict)  # numbers drawn but not used
    erase: list[Erasure] = field(default_factory=list)  # after everything else (R19)
    # Per registration, the trace of the message that changed it: its timers added here keep it.
    traced: dict[int, str] = field(default_factory=dict)


class Transaction(Protocol):
    """One database transaction; committed when its `Store.transaction()` block ends."""

    def read_for_messages(
        self,
        message_ids: Sequence[str],
        keys: set[KeyTuple],
        may_register: Mapping[str, set[KeyTuple]],
    ) -> Read:
        """`may_register`: per service, the keys whose message needs a number if nobody holds
        the key yet. Numbers and ids are drawn for them; the unused numbers are given back
        through `Writes.returned`."""

    def claim_due(self, today: dt.date, limit: int, exclude: Sequence[int] = ()) -> Claimed:
        """Unfired timers due by `today`, in due order; each timer fires once even when several
        transactions claim at the same time."""

    def write(self, writes: Writes, now: dt.datetime) -> None:
        """Raises `StaleRegistrationError` when a registration changed since it was read."""

    def mark_sent(self, event_ids: Sequence[str], now: dt.datetime) -> None:
        """Events published and confirmed; with this transaction's writes where it has them."""

    def left_over(self, created_before: dt.datetime, limit: int) -> list[Outgoing]:
        """Unsent events committed before `created_before`, oldest first, locked until commit."""

    def life(self, registration_id: int) -> list[Lived]:
        """Everything that happened to a registration, in the order it was decided (R17)."""

    def archived_for(self, message_id: str) -> int | None:
        """The registration an archived message is about (None: none, or not archived)."""

    def claim_to_erase(self, closed_by: dt.date, limit: int) -> list[Stored]:
        """Registrations closed on or before that day and not erased since, locked until commit."""

    def timer_settings(self) -> Applying | None:
        """Locked until commit; None while another transaction holds it."""

    def save_timer_settings(self, applying: Applying, now: dt.datetime) -> None: ...

    def live_after(self, after_id: int, limit: int) -> list[Stored]:
        """Live registrations with an id above `after_id`, in id order, locked until commit."""

    def timers_of(self, registration_ids: Sequence[int]) -> dict[int, dict[Timer, bool]]:
        """Each registration's stored timers, and whether each fired."""

    def savepoint(self) -> AbstractContextManager[object]:
        """A nested transaction: what fails inside it is undone alone."""

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Called once if the transaction does not commit."""


@dataclass(frozen=True)
class Window:
    """A date window, both ends included; either may be open."""

    after: dt.date | None = None
    before: dt.date | None = None


# The dates `find` filters on, in the order that picks a page's order when several are given.
WINDOWS = ("next_due", "follow_up_deadline", "reaction_deadline", "period_end")


@dataclass(frozen=True)
class CaseQuery:
    """What `find` asks: every filter given must hold. A page is ordered by the first window
    given (`WINDOWS`), then the registration number; `after` is the cursor of the page before."""

    states: tuple[str, ...] = ()
    service: str | None = None
    unit_kind: str | None = None
    bureau: str | None = None
    cycle: int | None = None
    windows: Mapping[str, Window] = field(default_factory=dict)
    limit: int = 100
    after: str | None = None

    @property
    def order(self) -> str | None:
        return next((name for name in WINDOWS if name in self.windows), None)


@dataclass(frozen=True)
class Found:
    stored: Stored
    next_due: dt.date | None  # the earliest unfired timer
    cursor: str  # `CaseQuery.after` for the page that follows this row


@dataclass
class CaseFile:
    """Everything stored about one registration, for `explain`."""

    stored: Stored
    history: list[dict[str, Any]]
    archive: list[dict[str, Any]]  # the messages about it; bodies only of retractions (R17)
    dead_letters: list[dict[str, Any]]  # about its enterprise number and service
    pending: list[Timer]  # unfired timers, in due order
    pruned_on: dt.date | None = None  # its history and archive deleted then (R20)


@dataclass(frozen=True)
class Stats:
    backlog: int  # events committed, not yet marked sent
    oldest: dt.datetime | None  # when the oldest of them was committed
    due: int  # unfired timers due by the business date
    overdue: int  # of them, due before it


class Store(Protocol):
    engine: Engine  # for migrations, and tests that look at the tables
    concurrent: bool  # several transactions claim timers at once without waiting (row locks)
    sets_itself_up: bool  # an embedded database: migrated by `kmo-worker run` itself

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Transaction]:
        """`durable=False`: the commit need not wait for the disk (only "sent" marks, whose
        loss means publishing an event again)."""

    def find(self, enterprise_number: str) -> list[Stored]: ...

    def by_number(self, registration_number: str) -> Stored | None: ...

    def search(self, query: CaseQuery) -> list[Found]:
        """A page of `query`'s registrations; each filter is an index range (cases.py)."""

    def case_file(self, stored: Stored) -> CaseFile: ...

    def lives(
        self,
        after_id: int,
        limit: int,
        *,
        states: Sequence[str] = (),
        number: str | None = None,
        up_to: int | None = None,
    ) -> list[Life]:
        """Registrations with an id above `after_id` (and at most `up_to`), in id order, each
        with its life."""

    def ids(self) -> tuple[int, int]:
        """The lowest and highest registration id (0, 0: none)."""

    def sent_at(self, event_ids: Sequence[str]) -> dict[str, dt.datetime | None]:
        """Of the events in the outbox among `event_ids`: when each was confirmed (None: not
        yet)."""

    def bodies(self, event_ids: Sequence[str]) -> dict[str, str]:
        """The stored bodies of these events (the outbox keeps every event)."""

    def record_dead_letter(self, row: Mapping[str, Any]) -> None:
        """What was dead-lettered, for `explain` (the message stays on the queue)."""

    # -- retention (R20): each call one short transaction, a batch of at most `limit` ----------

    def prune_unattached(self, handled_before: dt.datetime, limit: int) -> int:
        """Inbox ids of messages about no registration handled before then; rows deleted."""

    def prune_fired(self, deadline_before: dt.date, limit: int) -> int:
        """Fired timers whose deadline came before that day; rows deleted."""

    def prune_sent(self, sent_before: dt.datetime, after: int, limit: int) -> Pruned:
        """Published events, from the outbox's head (ids above `after`)."""

    def prune_dead_letters(self, before: dt.datetime, after: int, limit: int) -> Pruned: ...

    def prune_closed(self, closed_by: dt.date, today: dt.date, limit: int) -> tuple[int, int]:
        """History, archive and timers of registrations closed on or before that day: how many
        registrations, and rows deleted."""

    def oldest_kept(self) -> dict[str, dt.datetime | dt.date | None]:
        """Per table, the time of the oldest row retention may delete and still keeps."""

    def history_of(self, registration_id: int) -> list[dict[str, object]]: ...

    def count_by_state(self) -> dict[str, int]: ...

    def numbers_used(self) -> dict[str, int]:
        """Per service, the last registration number drawn (R21: `LAST_NUMBER` at most)."""

    def stats(self, today: dt.date) -> Stats: ...

    def outbox_backlog(self) -> int: ...

    def answers(self) -> bool:
        """The database answers a query."""

    def migrate(self) -> str | None:
        """Upgrade to the migrations' head; the revision now applied."""

    def is_at_head(self) -> bool: ...

    def dispose(self) -> None: ...
