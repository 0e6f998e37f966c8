"""R18: the pending timers of live registrations made to follow the settings in force.

Timers are written when a registration enters a state; a change of `KMO_NOTICE_OFFSETS` would
otherwise reach a registration only when it next changes state, and the sweep drops a timer the
settings no longer call for. A pass goes through the live registrations in id order, a batch per
transaction, and is idempotent: a second pass changes nothing. `worker_state` keeps how far it
got, so a pass interrupted (or shared by replicas, one batch at a time) goes on where it stopped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from worker.adapters.store import port
from worker.domain import schedule
from worker.domain.model import Context

BATCH = 500  # registrations per transaction: their rows stay locked until it commits


@dataclass
class Counts:
    registrations: int = 0  # live registrations looked at
    changed: int = 0  # of them, with timers cancelled or added
    cancelled: int = 0
    added: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.registrations += other.registrations
        self.changed += other.changed
        self.cancelled += other.cancelled
        self.added += other.added
        return self


@dataclass(frozen=True)
class Step:
    counts: Counts
    done: bool  # the stored timers now follow the settings
    busy: bool = False  # another transaction holds the pass: try again later


def step(store: port.Store, ctx: Context, now: dt.datetime, limit: int = BATCH) -> Step:
    """The next batch of the pass to the settings in `ctx`, if the timers do not follow them."""
    target = schedule.fingerprint(ctx.offsets)
    with store.transaction() as tx:
        state = tx.timer_settings()
        if state is None:
            return Step(Counts(), done=False, busy=True)
        if state.applied == target and state.applying is None:
            return Step(Counts(), done=True)
        after = state.after_id if state.applying == target else 0
        counts, last, writes = _batch(tx, after, limit, ctx)
        tx.write(writes, now)
        done = last is None or counts.registrations < limit
        following = (
            port.Applying(target, None, 0)
            if done
            else port.Applying(state.applied, target, last or 0)
        )
        tx.save_timer_settings(following, now)
    return Step(counts, done)


def begin(store: port.Store, ctx: Context, now: dt.datetime) -> None:
    """Start a whole pass to the settings in `ctx`, wherever the last one stopped."""
    with store.transaction() as tx:
        state = tx.timer_settings()
        applied = state.applied if state else None
        tx.save_timer_settings(port.Applying(applied, schedule.fingerprint(ctx.offsets), 0), now)


def plan(store: port.Store, ctx: Context, limit: int = BATCH) -> Iterator[Counts]:
    """What a whole pass would change, batch by batch; nothing is written."""
    after: int | None = 0
    while after is not None:
        with store.transaction() as tx:
            counts, after, _ = _batch(tx, after, limit, ctx)
        if counts.registrations:
            yield counts


def _batch(
    tx: port.Transaction, after_id: int, limit: int, ctx: Context
) -> tuple[Counts, int | None, port.Writes]:
    found = tx.live_after(after_id, limit)
    if not found:
        return Counts(), None, port.Writes()
    stored = tx.timers_of([s.id for s in found])
    counts, writes = Counts(registrations=len(found)), port.Writes()
    for live in found:
        cancel, add = schedule.rescheduled(
            live.registration, stored[live.id], ctx.offsets, ctx.today
        )
        writes.cancel += [(live.id, timer) for timer in cancel]
        writes.add += [(live.id, timer) for timer in add]
        counts.changed += bool(cancel or add)
        counts.cancelled += len(cancel)
        counts.added += len(add)
    return counts, found[-1].id, writes
