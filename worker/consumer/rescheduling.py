"""R18 in the loop: after a change of the settings the timers follow (`KMO_NOTICE_OFFSETS`),
the sweep first moves the pass over the live registrations on, a batch per turn, so that the
timers it fires are the ones the settings call for. Replicas share the pass (`worker_state`)."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from worker.bootstrap import App
from worker.domain import schedule
from worker.observability import logs
from worker.observability import metrics as m
from worker.service import reschedule

log = logs.get(__name__)


class Rescheduling:
    def __init__(self, app: App) -> None:
        self.app = app
        self.done = False  # the settings do not change while the process runs

    def move_on(self) -> int:
        """One batch of the pass, if one is due; how many registrations it looked at."""
        if self.done:
            return 0
        try:
            moved = reschedule.step(self.app.store, self.app.context(), self.app.clock.now())
        except SQLAlchemyError as error:  # a deadlock with a batch, the database away: next turn
            log.warning("timers_not_rescheduled", error=repr(error))
            return 0
        counts = moved.counts
        m.TIMERS_RESCHEDULED.labels("cancelled").inc(counts.cancelled)
        m.TIMERS_RESCHEDULED.labels("added").inc(counts.added)
        if counts.changed:
            log.info("timers_rescheduled", **vars(counts))
        if moved.done:
            self.done = True
            m.TIMERS_FOLLOW_SETTINGS.set(1)
            fingerprint = schedule.fingerprint(self.app.settings.notice_offsets)
            log.info("timers_follow_settings", fingerprint=fingerprint)
        return counts.registrations
