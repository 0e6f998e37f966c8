"""Calendar arithmetic exactly as lifecycle.md states it (§ Rules, "Date arithmetic, exactly")."""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta

ONE_DAY = dt.timedelta(days=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """Keep the day of the month, else the month's last day (2026-08-31 + 6 → 2027-02-28)."""
    result: dt.date = day + relativedelta(months=months)
    return result


def add_years(day: dt.date, years: int) -> dt.date:
    """Keep the day of the month; 29 February falls back to 28 February."""
    result: dt.date = day + relativedelta(years=years)
    return result


def period_end(start: dt.date, years: int) -> dt.date:
    """Last day of an N-year period starting on `start`: the day before `start`'s date N years on.

    A period starting on 29 February ends on 28 February: the anniversary does not exist in a
    common year, so "the day before it" is the last day of February (lifecycle.md).
    """
    anniversary = add_years(start, years)
    if start.month == 2 and start.day == 29:
        return dt.date(anniversary.year, 2, 28)
    return anniversary - ONE_DAY


def fires_on(deadline: dt.date) -> dt.date:
    """A deadline D is met by anything dated D or earlier; its timer fires on D + 1."""
    return deadline + ONE_DAY


def is_met(deadline: dt.date, on: dt.date) -> bool:
    return on <= deadline
