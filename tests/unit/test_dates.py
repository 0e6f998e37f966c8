from __future__ import annotations

import datetime as dt

import pytest

from worker.domain import dates

D = dt.date


@pytest.mark.parametrize(
    ("start", "years", "end"),
    [
        (D(2026, 3, 2), 5, D(2031, 3, 1)),  # lifecycle.md's example
        (D(2026, 3, 1), 2, D(2028, 2, 29)),  # a starter admitted 2026-03-01
        (D(2028, 2, 29), 5, D(2033, 2, 28)),  # a period starting on 29 February
        (D(2028, 2, 29), 4, D(2032, 2, 28)),  # ... even when the end year is a leap year
        (D(2027, 1, 1), 5, D(2031, 12, 31)),
    ],
)
def test_period_end(start: dt.date, years: int, end: dt.date) -> None:
    assert dates.period_end(start, years) == end


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (D(2026, 8, 31), 6, D(2027, 2, 28)),  # lifecycle.md's example
        (D(2027, 8, 31), 6, D(2028, 2, 29)),
        (D(2026, 3, 15), 6, D(2026, 9, 15)),
        (D(2026, 12, 31), 6, D(2027, 6, 30)),
    ],
)
def test_add_months_falls_back_to_the_last_day(
    day: dt.date, months: int, expected: dt.date
) -> None:
    assert dates.add_months(day, months) == expected


def test_extension_of_a_leap_day_end() -> None:
    assert dates.add_years(D(2028, 2, 29), 3) == D(2031, 2, 28)


def test_a_deadline_is_met_on_its_day_and_its_timer_fires_the_day_after() -> None:
    deadline = D(2027, 7, 31)
    assert dates.is_met(deadline, deadline)
    assert not dates.is_met(deadline, D(2027, 8, 1))
    assert dates.fires_on(deadline) == D(2027, 8, 1)
