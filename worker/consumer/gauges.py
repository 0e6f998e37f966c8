"""The gauges that come from the database: outbox backlog, timers due, registrations by state."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from worker.adapters.store import port
from worker.contracts.common import State
from worker.observability import logs
from worker.observability import metrics as m
from worker.service.clock import Clock

log = logs.get(__name__)


def refresh_backlog(store: port.Store, clock: Clock) -> None:
    """Cheap: partial indexes of the pending rows."""
    try:
        stats = store.stats(clock.today())
    except SQLAlchemyError as error:
        log.warning("stats_failed", error=repr(error))
        return
    m.OUTBOX_BACKLOG.set(stats.backlog)
    age = (clock.now() - stats.oldest).total_seconds() if stats.oldest else 0.0
    m.OUTBOX_OLDEST_SECONDS.set(max(age, 0.0))
    m.TIMERS_DUE.set(stats.due)
    m.TIMERS_OVERDUE.set(stats.overdue)


def refresh_states(store: port.Store) -> None:
    """Cheap too: the database keeps the counts by state (migration 0008); still only once a
    minute, as nothing on a dashboard moves faster."""
    try:
        counts = store.count_by_state()
        used = store.numbers_used()
    except SQLAlchemyError as error:
        log.warning("stats_failed", error=repr(error))
        return
    for state in State:
        m.REGISTRATIONS.labels(state.value).set(counts.get(state.value, 0))
    for service in port.PREFIX:
        m.NUMBERS_LEFT.labels(service).set(port.LAST_NUMBER - used.get(service, 0))
