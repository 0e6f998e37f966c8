"""The timer sweep: fires every timer due by the business date through the core.

Each batch is one transaction. On PostgreSQL each claimed timer is locked together with its
registration, SKIP LOCKED, so several replicas sweeping at once never fire the same timer twice
and never wait for each other; the same holds for the parallel transactions one sweep runs there
(`workers`: while one waits for the database, another computes). The query walks the partial
index on (`due_on`, `id`) of unfired rows: an empty sweep costs one index probe, not a scan. A
batch that fails is done again timer by timer, so one bad timer cannot hold the others back; it
is logged and left due (`kmo_timers_overdue` shows it).

Whatever the number of transactions, `on_fired` and `send` are called on the caller's thread
only: the broker connection and the caller's state need not be thread-safe.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator

from sqlalchemy.exc import SQLAlchemyError

from worker.adapters import timers
from worker.contracts.envelope import Outgoing
from worker.domain.model import Context
from worker.observability import logs
from worker.service import handling
from worker.service.clock import Clock

BATCH = 500

log = logs.get(__name__)
OnFired = Callable[[timers.DueTimer, handling.Handled], None]
Send = Callable[[list[Outgoing]], None]
Results = list[tuple[timers.DueTimer, handling.Handled]]


def sweep(
    shell: handling.Shell,
    ctx: Context,
    clock: Clock,
    on_fired: OnFired = lambda _t, _h: None,
    send: Send = lambda _events: None,
    workers: int = 1,
) -> int:
    """Fire what is due; `send` gets the events of each batch once it has committed. Returns
    how many timers fired."""
    parallel = workers > 1 and shell.skip_locked  # SQLite: one writer at a time anyway
    fired = 0
    batches = _batches(shell, ctx, clock)
    for results, events, more in batches:
        send(events)
        fired += _report(results, on_fired)
        if more and parallel:  # a full first batch: the rest in parallel (no threads for less)
            batches.close()
            return fired + _parallel(shell, ctx, clock, on_fired, send, workers)
    return fired


def _parallel(
    shell: handling.Shell,
    ctx: Context,
    clock: Clock,
    on_fired: OnFired,
    send: Send,
    workers: int,
) -> int:
    done = object()
    items: queue.Queue[object] = queue.Queue()

    def work() -> None:
        try:
            for results, events, _more in _batches(shell, ctx, clock):
                items.put((results, events))
        except BaseException as error:  # handed to the caller's thread, raised there
            items.put(error)
        finally:
            items.put(done)

    threads = [threading.Thread(target=work, name=f"sweep-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    fired, running = 0, workers
    failure: BaseException | None = None
    while running:
        item = items.get()
        if item is done:
            running -= 1
        elif isinstance(item, BaseException):
            failure = failure or item
        elif isinstance(item, tuple):
            results, events = item
            if failure is None:
                try:
                    send(events)
                except Exception as error:  # the events stay in the outbox; keep draining
                    failure = error
            fired += _report(results, on_fired)
    for thread in threads:
        thread.join()
    if failure is not None:
        raise failure
    return fired


def _report(results: Results, on_fired: OnFired) -> int:
    for timer, handled in results:
        on_fired(timer, handled)
    return _fired(results)


def _fired(results: Results) -> int:
    return sum(1 for _, handled in results if handled.outcome != "busy")


def _batches(
    shell: handling.Shell, ctx: Context, clock: Clock
) -> Generator[tuple[Results, list[Outgoing], bool], None, None]:
    """Committed batches, one after the other, until nothing is due (or nothing can fire); each
    with whether more may be due."""
    failed: set[int] = set()
    while True:
        try:
            with shell.engine.begin() as db:
                claimed = timers.claim_due(
                    db, ctx.today, BATCH, skip_locked=shell.skip_locked, exclude=failed
                )
                committed = handling.fire_batch(shell, db, claimed, ctx, clock.now())
            due = claimed.dues
            results, events = list(zip(due, committed.handled, strict=True)), committed.events
        except SQLAlchemyError:
            raise  # the database is away: the caller pauses, the timers stay due
        except Exception:
            log.exception("timer_batch_failed")
            results, events = _one_by_one(shell, ctx, clock, failed)
            due = [timer for timer, _ in results]
        more = len(due) == BATCH and _fired(results) > 0
        yield results, events, more
        if not more:
            return


def _one_by_one(
    shell: handling.Shell, ctx: Context, clock: Clock, failed: set[int]
) -> tuple[list[tuple[timers.DueTimer, handling.Handled]], list[Outgoing]]:
    results: list[tuple[timers.DueTimer, handling.Handled]] = []
    events: list[Outgoing] = []
    while True:
        with shell.engine.begin() as db:
            claimed = timers.claim_due(
                db, ctx.today, 1, skip_locked=shell.skip_locked, exclude=failed
            )
            due = claimed.dues
            if not due:
                return results, events
            try:
                with db.begin_nested():
                    committed = handling.fire_batch(shell, db, claimed, ctx, clock.now())
            except Exception:
                log.exception("timer_failed", timer_id=due[0].id, kind=due[0].timer.kind)
                failed.add(due[0].id)
                continue
        events += committed.events
        results.append((due[0], committed.handled[0]))
