"""Retention (R19, R20): what is kept how long. A pass first erases the personal data of the
registrations closed longer than `KMO_ERASURE_YEARS`, through the core, then deletes what has
outlived its window, table by table: each batch its own short transaction, so a message waits
for at most one batch, and a pass stopped halfway has lost nothing.

Windows of operational rows count in wall-clock time from when the row was written (the inbox,
the outbox, dead letters); windows of a registration's life count in business days from the
day it closed, as the rules do. Fired timers go a window after their deadline, not after they
fired: a timer added again (a state entered anew, a reschedule) for a deadline that has passed
does nothing, while one for a deadline still ahead could send its notice twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from worker.adapters.store import port
from worker.config import Settings
from worker.domain import dates
from worker.domain.model import Context
from worker.service import unit_of_work
from worker.service.envelopes import Envelopes

BATCH = 2_000  # rows per transaction: a few milliseconds of deleting (a closed registration
# counts for `ROWS_PER_REGISTRATION`)
ROWS_PER_REGISTRATION = 20  # about: a closed registration's history and archive
TABLES = ("inbox", "outbox", "timers", "dead_letters", "history")  # the metrics' labels
Prune = Callable[[], int]
PruneFrom = Callable[[int], port.Pruned]


@dataclass(frozen=True)
class Windows:
    inbox_days: int
    outbox_days: int
    timer_days: int
    dead_letter_days: int
    closed_years: int | None  # None: the lives of closed registrations are kept for good
    erasure_years: int | None  # None: personal data is erased on request only

    @classmethod
    def of(cls, settings: Settings) -> Windows:
        return cls(
            settings.inbox_retention_days,
            settings.outbox_retention_days,
            settings.timer_retention_days,
            settings.dead_letter_retention_days,
            settings.closed_retention_years,
            settings.erasure_years,
        )


class Batch(NamedTuple):
    """One transaction of a pass: the table (or `erased`, registrations), and how many."""

    table: str
    rows: int


def batches(
    store: port.Store,
    wrap: Envelopes,
    ctx: Context,
    now: dt.datetime,
    windows: Windows,
    limit: int = BATCH,
) -> Iterator[Batch]:
    """A whole pass, batch by batch; the caller may stop between any two."""
    registrations = max(1, limit // ROWS_PER_REGISTRATION)  # closed ones per transaction
    if windows.erasure_years is not None:
        yield from _erasures(store, wrap, ctx, now, windows.erasure_years, registrations)
    if windows.closed_years is not None:
        closed_by = dates.add_years(ctx.today, -windows.closed_years)
        while True:
            pruned, rows = store.prune_closed(closed_by, ctx.today, registrations)
            yield Batch("history", rows)
            if pruned < registrations:
                break
    handled_before = now - dt.timedelta(days=windows.inbox_days)
    yield from _until_short("inbox", lambda: store.prune_unattached(handled_before, limit), limit)
    deadline_before = ctx.today - dt.timedelta(days=windows.timer_days)
    yield from _until_short("timers", lambda: store.prune_fired(deadline_before, limit), limit)
    sent_before = now - dt.timedelta(days=windows.outbox_days)
    yield from _from_head("outbox", lambda after: store.prune_sent(sent_before, after, limit))
    letters_before = now - dt.timedelta(days=windows.dead_letter_days)
    yield from _from_head(
        "dead_letters", lambda after: store.prune_dead_letters(letters_before, after, limit)
    )


def _erasures(
    store: port.Store, wrap: Envelopes, ctx: Context, now: dt.datetime, years: int, limit: int
) -> Iterator[Batch]:
    closed_by = dates.add_years(ctx.today, -years)
    while True:
        with store.transaction() as tx:
            found = tx.claim_to_erase(closed_by, limit)
            if found:
                unit_of_work.erase_closed(tx, wrap, found, ctx, now)
        yield Batch("erased", len(found))
        if len(found) < limit:
            return


def _until_short(table: str, prune: Prune, limit: int) -> Iterator[Batch]:
    while True:
        rows = prune()
        yield Batch(table, rows)
        if rows < limit:
            return


def _from_head(table: str, prune: PruneFrom) -> Iterator[Batch]:
    after: int | None = 0
    while after is not None:
        pruned = prune(after)
        yield Batch(table, pruned.rows)
        after = pruned.after
