"""The timer sweep: fires every timer due by the business date through the core.

Each batch is one transaction. On PostgreSQL the claimed rows are locked with SKIP LOCKED, so
several replicas sweeping at once never fire the same timer twice. The query walks the partial
index on `due_on` (unfired rows only): an empty sweep costs one index probe, not a scan.
"""

from __future__ import annotations

from collections.abc import Callable

from worker.adapters import repository
from worker.domain.model import Context
from worker.observability import logs
from worker.service import handling
from worker.service.clock import Clock

BATCH = 200

log = logs.get(__name__)


def sweep(
    shell: handling.Shell,
    ctx: Context,
    clock: Clock,
    on_fired: Callable[[repository.DueTimer, handling.Handled], None] = lambda _t, _h: None,
) -> int:
    fired = 0
    while True:
        results = []
        with shell.engine.begin() as db:
            due = repository.claim_due(db, ctx.today, BATCH, skip_locked=shell.skip_locked)
            for timer in due:
                try:
                    # A savepoint per timer: one that fails does not undo the others.
                    with db.begin_nested():
                        handled = handling.fire_in(shell, db, timer, ctx, clock.now())
                except Exception:
                    log.exception("timer_failed", timer_id=timer.id, kind=timer.timer.kind)
                    continue
                results.append((timer, handled))
        for timer, handled in results:
            on_fired(timer, handled)
        done = sum(1 for _, handled in results if handled.outcome != "busy")
        fired += done
        if len(due) < BATCH or done == 0:
            return fired
