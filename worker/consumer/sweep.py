"""The timer sweep: fires every timer due by the business date through the core.

Each batch is one transaction. Where the store claims timers concurrently (PostgreSQL), several
replicas sweeping at once never fire the same timer twice and never wait for each other, and one
sweep runs `workers` transactions in parallel: while one waits for the database, another
computes. A batch that fails is done again timer by timer, so one bad timer cannot hold the
others back; it is logged and left due (`kmo_timers_overdue` shows it).

Whatever the number of transactions, `on_fired` and `send` are called on the caller's thread
only: the broker connection and the caller's state need not be thread-safe.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from worker.adapters.store import port
from worker.contracts.envelope import Outgoing
from worker.domain.model import Context
from worker.observability import logs
from worker.service import unit_of_work
from worker.service.clock import Clock
from worker.service.envelopes import Envelopes

BATCH = 500  # timers per transaction

log = logs.get(__name__)
OnFired = Callable[[port.DueTimer, unit_of_work.Result], None]
Send = Callable[[list[Outgoing]], None]
Results = list[tuple[port.DueTimer, unit_of_work.Result]]


@dataclass(frozen=True)
class Work:
    """What a sweep's transactions need."""

    store: port.Store
    envelopes: Envelopes
    ctx: Context
    clock: Clock
    trace: unit_of_work.TimerTrace | None = None


def sweep(
    store: port.Store,
    envelopes: Envelopes,
    ctx: Context,
    clock: Clock,
    on_fired: OnFired = lambda _t, _h: None,
    send: Send = lambda _events: None,
    workers: int = 1,
    trace: unit_of_work.TimerTrace | None = None,
) -> int:
    """Fire what is due; `send` gets the events of each batch once it has committed. Returns
    how many timers fired. `trace`: each timer's firing traced (#19)."""
    work = Work(store, envelopes, ctx, clock, trace)
    parallel = workers > 1 and store.concurrent  # one writer at a time, else
    fired = 0
    batches = _batches(work)
    for results, events, more in batches:
        send(events)
        fired += _report(results, on_fired)
        if more and parallel:  # a full first batch: the rest in parallel (no threads for less)
            batches.close()
            return fired + _parallel(work, on_fired, send, workers)
    return fired


def _parallel(
    work: Work,
    on_fired: OnFired,
    send: Send,
    workers: int,
) -> int:
    done = object()
    items: queue.Queue[object] = queue.Queue()

    def run_batches() -> None:
        try:
            for results, events, _more in _batches(work):
                items.put((results, events))
        except BaseException as error:  # handed to the caller's thread, raised there
            items.put(error)
        finally:
            items.put(done)

    threads = [threading.Thread(target=run_batches, name=f"sweep-{i}") for i in range(workers)]
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
    for timer, result in results:
        on_fired(timer, result)
    return _fired(results)


def _fired(results: Results) -> int:
    return sum(1 for _, result in results if result.outcome != "busy")


def _batches(work: Work) -> Generator[tuple[Results, list[Outgoing], bool], None, None]:
    """Committed batches, one after the other, until nothing is due (or nothing can fire); each
    with whether more may be due."""
    failed: set[int] = set()
    while True:
        try:
            with work.store.transaction() as tx:
                claimed = tx.claim_due(work.ctx.today, BATCH, exclude=sorted(failed))
                committed = _fire(work, tx, claimed)
            results = list(zip(claimed.dues, committed.results, strict=True))
            events, full = committed.events, claimed.full
        except SQLAlchemyError:
            raise  # the database is away: the caller pauses, the timers stay due
        except Exception:
            log.exception("timer_batch_failed")
            results, events = _one_by_one(work, failed)
            full = len(results) == BATCH
        more = full and _fired(results) > 0
        yield results, events, more
        if not more:
            return


def _fire(work: Work, tx: port.Transaction, claimed: port.Claimed) -> unit_of_work.Committed:
    now = work.clock.now()
    return unit_of_work.fire_timers(tx, work.envelopes, claimed, work.ctx, now, work.trace)


def _one_by_one(work: Work, failed: set[int]) -> tuple[Results, list[Outgoing]]:
    results: Results = []
    events: list[Outgoing] = []
    while True:
        with work.store.transaction() as tx:
            claimed = tx.claim_due(work.ctx.today, 1, exclude=sorted(failed))
            due = claimed.dues
            if not due:
                return results, events
            try:
                with tx.savepoint():
                    committed = _fire(work, tx, claimed)
            except Exception:
                log.exception("timer_failed", timer_id=due[0].id, kind=due[0].timer.kind)
                failed.add(due[0].id)
                continue
        events += committed.events
        results.append((due[0], committed.results[0]))
