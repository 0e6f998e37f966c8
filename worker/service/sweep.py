"""The timer sweep: fires every timer due by the business date through the core.

Each batch is one transaction. On PostgreSQL the claimed rows are locked with SKIP LOCKED, so
several replicas sweeping at once never fire the same timer twice. The query walks the partial
index on `due_on` (unfired rows only): an empty sweep costs one index probe, not a scan.
"""

from __future__ import annotations

from collections.abc import Callable

from worker.adapters import repository
from worker.domain.model import Context
from worker.service import handling
from worker.service.clock import Clock

BATCH = 200


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
                results.append((timer, handling.fire_in(shell, db, timer, ctx, clock.now())))
        for timer, handled in results:
            on_fired(timer, handled)
        fired += len(due)
        if len(due) < BATCH:
            return fired
