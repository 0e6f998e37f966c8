"""Which timers a registration needs in its current state (R5–R9).

Timers are derived from the state, never stored in it: on every change of state the shell replaces
the registration's pending timers with `timers_for(registration)`, and firing a timer first checks
that it is still one of them, so a timer left over from an earlier state can never act.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Literal, NamedTuple

from worker.contracts.common import State
from worker.domain import dates
from worker.domain.model import NoticeOffsets, Registration

DeadlineKind = Literal["deadline.follow_up", "deadline.reaction", "deadline.period_end"]
NoticeKind = Literal[
    "notice.expiring", "notice.follow_up_due", "notice.reaction_due", "notice.starter_modules_due"
]
TimerKind = DeadlineKind | NoticeKind
TIMED = ("deadline.", "notice.")  # how a timer's kind begins, and a message's type never does
# Raise when `timers_for` derives other timers from the same registration: every live
# registration's pending timers are then rescheduled (R18), as after a change of the offsets.
SCHEDULE_VERSION = 1


class Timer(NamedTuple):
    """Ordered by due date first. A named tuple, not a dataclass: the sweep makes and hashes
    thousands of these a second, and a tuple's construction and hash run in C."""

    due: dt.date
    kind: TimerKind
    deadline: dt.date
    offset_days: int = 0

    @property
    def cause_id(self) -> str:
        """What events caused by this timer name as `causationid` (stable across replays)."""
        return f"timer:{self.kind}:{self.deadline.isoformat()}:{self.offset_days}"


def from_cause_id(cause_id: str) -> Timer:
    """The timer a history row's cause names (`<registration number>:` + `Timer.cause_id`)."""
    _number, _timer, kind, deadline, offset = cause_id.split(":")
    day, days = dt.date.fromisoformat(deadline), int(offset)
    if kind.startswith("deadline."):
        return Timer(dates.fires_on(day), kind, day, days)  # type: ignore[arg-type]
    return Timer(day - dt.timedelta(days=days), kind, day, days)  # type: ignore[arg-type]


def timers_for(registration: Registration, offsets: NoticeOffsets) -> frozenset[Timer]:
    period = registration.period
    return _timers(
        registration.state,
        period.end if period else None,
        registration.follow_up_deadline,
        registration.reaction_deadline,
        registration.state_since,
        offsets,
    )


# The timers depend on a handful of dates only, which many registrations share (a cohort whose
# periods end on one day), and a sweep or a batch asks for the same registration's timers more
# than once (as read, as firing checks it, as changed): memoised (docs/performance.md).
@functools.lru_cache(maxsize=4096)
def _timers(
    state: State,
    period_end: dt.date | None,
    follow_up_deadline: dt.date | None,
    reaction_deadline: dt.date | None,
    since: dt.date,
    offsets: NoticeOffsets,
) -> frozenset[Timer]:
    timers: set[Timer] = set()
    if state in (State.REGISTERED, State.REGISTERED_CONDITIONALLY) and period_end:
        timers |= _deadline("deadline.period_end", period_end)
        timers |= _notices(since, "notice.expiring", period_end, offsets.expiring)
    if state is State.REGISTERED_CONDITIONALLY and follow_up_deadline:
        timers |= _deadline("deadline.follow_up", follow_up_deadline)
        timers |= _notices(since, "notice.follow_up_due", follow_up_deadline, offsets.follow_up_due)
    if state is State.ADMITTED_TEMPORARILY and period_end:
        timers |= _deadline("deadline.period_end", period_end)
        timers |= _notices(
            since, "notice.starter_modules_due", period_end, offsets.starter_modules_due
        )
    if state is State.AUDIT_FAILED and reaction_deadline:
        timers |= _deadline("deadline.reaction", reaction_deadline)
        timers |= _notices(since, "notice.reaction_due", reaction_deadline, offsets.reaction_due)
    return frozenset(timers)


def _deadline(kind: DeadlineKind, deadline: dt.date) -> set[Timer]:
    return {Timer(dates.fires_on(deadline), kind, deadline)}


def _notices(
    since: dt.date, kind: NoticeKind, deadline: dt.date, offsets: tuple[int, ...]
) -> set[Timer]:
    # A notice whose day fell before its state began (`since`) is not sent at all (R9).
    days = ((deadline - dt.timedelta(days=offset), offset) for offset in offsets)
    return {Timer(day, kind, deadline, offset) for day, offset in days if day >= since}


def fingerprint(offsets: NoticeOffsets) -> str:
    """What the pending timers of live registrations follow: the offsets and this module."""
    text = json.dumps([SCHEDULE_VERSION, dataclasses.asdict(offsets)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rescheduled(
    registration: Registration,
    stored: Mapping[Timer, bool],
    offsets: NoticeOffsets,
    today: dt.date,
) -> tuple[list[Timer], list[Timer]]:
    """R18: the timers to cancel and to add so that a live registration's pending timers follow
    `offsets`; `stored` maps each stored timer to whether it fired. Interpretation: a notice whose
    day has passed by `today` is not added (it would come late and out of turn); a deadline
    always is."""
    wants = timers_for(registration, offsets)
    cancel = sorted(timer for timer, fired in stored.items() if not fired and timer not in wants)
    add = sorted(
        timer
        for timer in wants
        if timer not in stored and (timer.kind.startswith("deadline.") or timer.due >= today)
    )
    return cancel, add
