"""Work the loop does now and then: each job at most once every so many seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Every:
    """`job`, at most once every `seconds` (monotonic); due at once when made."""

    seconds: float
    job: Callable[[], object]
    _last: float = field(default=-float("inf"))

    def due(self, now: float) -> bool:
        return now - self._last >= self.seconds

    def maybe(self, now: float | None = None) -> None:
        """Run the job if it is due."""
        now = time.monotonic() if now is None else now
        if self.due(now):
            self.run(now)

    def run(self, now: float | None = None) -> object:
        """Run the job now, due or not; the next run is due `seconds` from now."""
        self._last = time.monotonic() if now is None else now
        return self.job()


@dataclass
class Periodic:
    """The loop's jobs, run in the order they were added when due."""

    jobs: list[Every] = field(default_factory=list)

    def every(self, seconds: float, job: Callable[[], object]) -> Every:
        scheduled = Every(seconds, job)
        self.jobs.append(scheduled)
        return scheduled

    def run_due(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for scheduled in self.jobs:
            scheduled.maybe(now)
