"""Checks on Belgian and banking identifiers, delegated to python-stdnum and schwifty.

The libraries are a little more lenient than lifecycle.md in two places, so the spec's exact rule
is applied on top of them: an enterprise number is exactly ten digits (stdnum also pads the old
nine-digit form) and its check digits are 97 − (first eight mod 97), never 00, 98 or 99 (stdnum
only asks that the sum be divisible by 97).
"""

from __future__ import annotations

import functools
import re

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.be import bis, vat
from stdnum.exceptions import ValidationError

_SEPARATORS = re.compile(r"[\s.]")
_TEN_DIGITS = re.compile(r"[0-9]{10}")
# Enterprise numbers recur: every message about a registration names its provider's, and the
# worker looks at it several times per message. stdnum's check cleans the text character by
# character: cached (docs/performance.md).
# Bounded: a few thousand recent numbers, some hundreds of kilobytes.
_RECENT = 4096


@functools.lru_cache(maxsize=_RECENT)
def normalise_enterprise_number(spelling: str) -> str:
    """`0403.170.701`, `BE0403170701`, `BE 0403 170 701` → `0403170701` (no validity check)."""
    compact = _SEPARATORS.sub("", spelling).upper()
    return compact.removeprefix("BE")


@functools.lru_cache(maxsize=_RECENT)
def is_valid_enterprise_number(spelling: str) -> bool:
    number = normalise_enterprise_number(spelling)
    if not _TEN_DIGITS.fullmatch(number):
        return False
    try:
        vat.validate(number)
    except ValidationError:
        return False
    return int(number[8:]) == 97 - int(number[:8]) % 97


def iban_problem(spelling: str) -> str | None:
    """None for a valid IBAN of a SEPA-scheme country, else the lifecycle.md reason code."""
    try:
        iban = IBAN(spelling)
    except (SchwiftyException, ValueError):
        return "invalid_iban"
    return None if iban.in_sepa_zone else "iban_not_sepa"


def is_valid_bis_number(number: str) -> bool:
    """A BIS number: a national-number layout whose birth month is raised by 20 or 40."""
    return bool(bis.is_valid(number))
