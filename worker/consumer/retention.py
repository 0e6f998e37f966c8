"""Retention in the worker (R19, R20): a pass every `EVERY_SECONDS`, batch by batch.

On PostgreSQL the pass runs on a thread of its own, beside the loop: its batches are short
transactions on rows no message is about (`SKIP LOCKED` passes over any that one holds), so the
loop never waits for them. SQLite has one writer: there the loop runs one batch per turn, so
that a message waits for at most one batch.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator

from sqlalchemy.exc import SQLAlchemyError

from worker.bootstrap import App
from worker.observability import logs
from worker.observability import metrics as m
from worker.service import retention

EVERY_SECONDS = 600.0  # a pass with nothing to do costs a few index lookups
TURN_SECONDS = 0.2  # SQLite: between two batches of a pass, one turn of the loop at least
# PostgreSQL: small batches, each followed by a pause this many times as long as it took.
# Retention shares the cores with the loop, the database and often the broker; at a quarter of
# its time, in short steps, it keeps out of the messages' way and still deletes thousands of
# rows a second (README, Performance). `kmo-worker retention` runs at full speed.
PAUSE_PER_BATCH = 3.0
BATCH_BESIDE_THE_LOOP = 500
log = logs.get(__name__)


class Retention:
    def __init__(self, app: App) -> None:
        self.app = app
        self.windows = retention.Windows.of(app.settings)
        self._batches: Iterator[retention.Batch] | None = None
        self._done: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- PostgreSQL: a thread ---------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The batch in hand is finished (committed or rolled back) before this returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_pass(self._paused, limit=BATCH_BESIDE_THE_LOOP)
            self._stop.wait(EVERY_SECONDS)

    def _paused(self, seconds: float) -> bool:
        """After a batch that took `seconds`: pause; whether to stop."""
        return self._stop.wait(seconds * PAUSE_PER_BATCH)

    def run_pass(
        self,
        after_batch: Callable[[float], bool] = lambda _s: False,
        limit: int = retention.BATCH,
    ) -> dict[str, int]:
        """A whole pass now; `after_batch(seconds)` may pause, and stops it by returning True.
        Rows per table."""
        done: dict[str, int] = {}
        started = time.monotonic()
        try:
            for batch in self.batches(limit):
                done[batch.table] = done.get(batch.table, 0) + batch.rows
                if after_batch(time.monotonic() - started):
                    break
                started = time.monotonic()
        except SQLAlchemyError as error:  # the database away: the next pass goes on
            log.warning("retention_failed", error=repr(error))
        self.finished(done)
        return done

    # -- SQLite: a batch per turn of the loop --------------------------------------------------

    def step(self) -> None:
        """The next batch of the pass under way, or of a new one."""
        if self._batches is None:
            self._batches, self._done = self.batches(), {}
        try:
            batch = next(self._batches)
            self._done[batch.table] = self._done.get(batch.table, 0) + batch.rows
            return
        except StopIteration:
            pass
        except SQLAlchemyError as error:
            log.warning("retention_failed", error=repr(error))
        self._batches = None
        self.finished(self._done)

    @property
    def in_pass(self) -> bool:
        return self._batches is not None

    # -- both --------------------------------------------------------------------------------

    def batches(self, limit: int = retention.BATCH) -> Iterator[retention.Batch]:
        """A whole pass, counted in the metrics batch by batch."""
        app = self.app
        for batch in retention.batches(
            app.store, app.envelopes, app.context(), app.clock.now(), self.windows, limit
        ):
            if batch.table == "erased":
                m.REGISTRATIONS_ERASED.labels("on_time").inc(batch.rows)
            else:
                m.RETENTION_DELETED.labels(batch.table).inc(batch.rows)
            yield batch

    def finished(self, done: dict[str, int], *, logged: bool = True) -> None:
        """Log the pass and refresh the age of the oldest row kept per table."""
        if logged and any(done.values()):
            log.info("retention_pass", **done)
        try:
            oldest = self.app.store.oldest_kept()
        except SQLAlchemyError as error:
            log.warning("retention_gauges_failed", error=repr(error))
            return
        now, today = self.app.clock.now(), self.app.clock.today()
        for table in retention.TABLES:
            m.RETENTION_OLDEST.labels(table).set(_age(oldest.get(table), now, today))


def _age(moment: dt.datetime | dt.date | None, now: dt.datetime, today: dt.date) -> float:
    if moment is None:
        return 0.0
    if isinstance(moment, dt.datetime):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return max(0.0, (now - aware).total_seconds())
    return max(0.0, (today - moment).days * 86_400.0)
