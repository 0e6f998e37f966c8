from __future__ import annotations

import pytest

from worker.domain import identifiers


@pytest.mark.parametrize(
    ("spelling", "valid"),
    [
        ("0403170701", True),
        ("0403.170.701", True),
        ("BE0403170701", True),
        ("BE 0403.170.701", True),
        ("1543301276", True),  # the 1-series of enterprise numbers
        ("0097000097", True),  # first eight divisible by 97: the check digits are 97, not 00
        ("0097000000", False),  # ... so 00 is wrong, though (n + 0) mod 97 = 0
        ("0403170702", False),  # wrong check digits
        ("2403170701", False),  # first digit must be 0 or 1
        ("403170701", False),  # nine digits: the old form is not accepted
        ("04031707011", False),
        ("0403-170-701x", False),
    ],
)
def test_enterprise_number(spelling: str, valid: bool) -> None:
    assert identifiers.is_valid_enterprise_number(spelling) is valid


def test_check_digits_98_and_99_are_refused_although_the_sum_is_divisible() -> None:
    # first eight ≡ 96 (mod 97): 97 − 96 = 01 is right; 98 also makes the sum divisible by 97.
    first_eight = next(n for n in range(10_000_000, 10_001_000) if n % 97 == 96)
    assert identifiers.is_valid_enterprise_number(f"{first_eight:08d}01")
    assert not identifiers.is_valid_enterprise_number(f"{first_eight:08d}98")


@pytest.mark.parametrize(
    ("iban", "problem"),
    [
        ("BE68539007547034", None),
        ("BE68 5390 0754 7034", None),
        ("NL91ABNA0417164300", None),
        ("CH9300762011623852957", None),  # Switzerland: SEPA scheme, not EU
        ("GB33BUKB20201555555555", None),  # the United Kingdom stays in the SEPA scheme
        ("BE68539007547035", "invalid_iban"),  # checksum off by one
        ("BE6853900754703", "invalid_iban"),  # too short for Belgium
        ("not an iban", "invalid_iban"),
        ("TR330006100519786457841326", "iban_not_sepa"),  # a valid Turkish IBAN
        ("BR1800360305000010009795493C1", "iban_not_sepa"),
    ],
)
def test_iban(iban: str, problem: str | None) -> None:
    assert identifiers.iban_problem(iban) == problem


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("75231500124", True),  # born 1975-03-15, month + 20 (sex unknown)
        ("75431500266", True),  # month + 40 (sex known)
        ("85010100313", False),  # a national number, not a BIS number
        ("75231500125", False),  # wrong check digits
        ("75331500103", False),  # month 33: neither +20 nor +40 of a real month
    ],
)
def test_bis_number(number: str, valid: bool) -> None:
    assert identifiers.is_valid_bis_number(number) is valid


def test_normalised_enterprise_number_has_ten_digits() -> None:
    assert identifiers.normalise_enterprise_number("BE 0403.170.701") == "0403170701"
