"""The timer sweep: fires every timer due by the business date through the core.

Each batch is one transaction. On PostgreSQL the claimed rows are locked with SKIP LOCKED, so
several replicas sweeping at once never fire the same timer twice. The query walks the partial
index on `due_on` (unfired rows only): an empty sweep costs one index probe, not a scan. A batch
that fails is done again timer by timer, so one bad timer cannot hold the others back; it is
logged and left due (`kmo_timers_overdue` shows it).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from worker.adapters import timers
from worker.domain.model import Context
from worker.observability import logs
from worker.service import handling
from worker.service.clock import Clock

BATCH = 500

log = logs.get(__name__)
OnFired = Callable[[timers.DueTimer, handling.Handled], None]


def sweep(
    shell: handling.Shell,
    ctx: Context,
    clock: Clock,
    on_fired: OnFired = lambda _t, _h: None,
) -> int:
    fired = 0
    failed: set[int] = set()
    while True:
        try:
            with shell.engine.begin() as db:
                due = timers.claim_due(
                    db, ctx.today, BATCH, skip_locked=shell.skip_locked, exclude=failed
                )
                results = list(
                    zip(due, handling.fire_batch(shell, db, due, ctx, clock.now()), strict=True)
                )
        except SQLAlchemyError:
            raise  # the database is away: the caller pauses, the timers stay due
        except Exception:
            log.exception("timer_batch_failed")
            results = _one_by_one(shell, ctx, clock, failed)
            due = [timer for timer, _ in results]
        for timer, handled in results:
            on_fired(timer, handled)
        done = sum(1 for _, handled in results if handled.outcome != "busy")
        fired += done
        if len(due) < BATCH or done == 0:
            return fired


def _one_by_one(
    shell: handling.Shell, ctx: Context, clock: Clock, failed: set[int]
) -> list[tuple[timers.DueTimer, handling.Handled]]:
    results: list[tuple[timers.DueTimer, handling.Handled]] = []
    while True:
        with shell.engine.begin() as db:
            due = timers.claim_due(db, ctx.today, 1, skip_locked=shell.skip_locked, exclude=failed)
            if not due:
                return results
            try:
                with db.begin_nested():
                    (handled,) = handling.fire_batch(shell, db, due, ctx, clock.now())
            except Exception:
                log.exception("timer_failed", timer_id=due[0].id, kind=due[0].timer.kind)
                failed.add(due[0].id)
                continue
        results.append((due[0], handled))
