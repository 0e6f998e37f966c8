"""Retention of the archive: the bodies of inbound messages older than
`KMO_ARCHIVE_RETENTION_DAYS` are cleared; what was decided, when and by whom stays, and so does
every message id (the idempotency key)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import SQLAlchemyError

from worker.adapters.store import port
from worker.observability import logs
from worker.service.clock import Clock

EVERY_SECONDS = 3600.0  # a day's messages at a time, in the quiet of an hour
log = logs.get(__name__)


def prune(store: port.Store, clock: Clock, days: int) -> int:
    """Clear what is older than `days`; the database away is tried again next time."""
    before = clock.now() - dt.timedelta(days=days)
    try:
        cleared = store.prune_archive(before)
    except SQLAlchemyError as error:
        log.warning("archive_not_pruned", error=repr(error))
        return 0
    if cleared:
        log.info("archive_pruned", cleared=cleared, handled_before=before.isoformat())
    return cleared
