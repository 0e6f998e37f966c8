"""`kmo-worker find`'s flags: dates as people write them, and a clear error for a wrong one."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest

from worker.entrypoints import find

TODAY = dt.date(2027, 2, 14)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2027-03-31", dt.date(2027, 3, 31)),
        ("today", TODAY),
        ("+30d", dt.date(2027, 3, 16)),
        ("-14d", dt.date(2027, 1, 31)),
        ("end-of-month", dt.date(2027, 2, 28)),
        ("end-of-next-month", dt.date(2027, 3, 31)),
    ],
)
def test_dates_as_people_write_them(text: str, day: dt.date) -> None:
    assert find.day(TODAY, text) == day


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    find.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_flags_become_one_query_ordered_by_its_first_window() -> None:
    query = find.query_of(
        _args(
            "--state",
            "registered_conditionally",
            "--follow-up-before",
            "end-of-next-month",
            "--end-after",
            "2027-01-01",
            "--bureau",
            "0403.170.701",
        ),
        TODAY,
    )
    assert query.states == ("registered_conditionally",)
    assert query.windows["follow_up_deadline"].before == dt.date(2027, 3, 31)
    assert query.order == "follow_up_deadline"  # the deadline first, then the end date
    assert query.bureau == "0403170701"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("--end-before", "31/12/2027"), "--end-before"),
        (("--bureau", "0403170702"), "--bureau"),
        (("--limit", "0"), "--limit"),
        (("--after", "'; drop table"), "--after"),
    ],
)
def test_a_wrong_flag_is_named_in_the_error(argv: tuple[str, ...], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        find.query_of(_args(*argv), TODAY)
