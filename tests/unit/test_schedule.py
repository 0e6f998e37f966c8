"""Which timers a state needs: each registration gets the answer for its own dates, although the
answers are memoised (many registrations share their dates, and a batch asks more than once)."""

from __future__ import annotations

import datetime as dt

from worker.contracts.common import Key, State
from worker.contracts.outbound import Period
from worker.domain import schedule
from worker.domain.model import NoticeOffsets, Registration

D = dt.date
KEY = Key.model_validate(
    {
        "enterprise_number": "1543301276",
        "unit": {"kind": "registered_office"},
        "service": "training",
    }
)
BASE = Registration(
    key=KEY,
    number="DV.O000001",
    state=State.REGISTERED,
    state_since=D(2026, 1, 5),
    period=Period(start=D(2026, 1, 5), end=D(2031, 1, 4)),
)


def _with(**changes: object) -> Registration:
    return BASE.model_copy(update=changes)


def test_every_input_of_the_memoised_answer_is_part_of_its_key() -> None:
    offsets = NoticeOffsets()
    neighbours = [
        BASE,
        _with(state_since=D(2030, 12, 1)),  # after the 90-day notice: that one is not sent
        _with(period=Period(start=D(2026, 1, 5), end=D(2032, 6, 30))),
        _with(state=State.REGISTERED_CONDITIONALLY, follow_up_deadline=D(2027, 1, 4)),
        _with(state=State.REGISTERED_CONDITIONALLY, follow_up_deadline=D(2027, 3, 4)),
        _with(state=State.AUDIT_FAILED, reaction_deadline=D(2026, 7, 5)),
        _with(state=State.AUDIT_FAILED, reaction_deadline=D(2026, 9, 5)),
        _with(state=State.ADMITTED_TEMPORARILY),
    ]
    answers = [schedule.timers_for(r, offsets) for r in neighbours]
    answers.append(schedule.timers_for(BASE, NoticeOffsets(expiring=(60,))))
    assert len(set(answers)) == len(answers)  # nobody got a neighbour's answer
    for registration, answer in zip(neighbours, answers, strict=False):  # asked again, in order
        assert schedule.timers_for(registration, offsets) == answer


def test_a_registered_provider_gets_its_period_end_and_two_notices() -> None:
    timers = schedule.timers_for(BASE, NoticeOffsets())
    assert sorted((t.kind, t.due, t.offset_days) for t in timers) == [
        ("deadline.period_end", D(2031, 1, 5), 0),
        ("notice.expiring", D(2030, 10, 6), 90),
        ("notice.expiring", D(2030, 12, 5), 30),
    ]
    late = schedule.timers_for(_with(state_since=D(2030, 12, 1)), NoticeOffsets())
    assert sorted(t.offset_days for t in late if t.kind == "notice.expiring") == [30]
