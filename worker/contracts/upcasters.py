"""Upcasters: an inbound message of an older major version brought to the current shape, so the
rules only ever see the latest one; one function per (type, old major), from the old `data` to the
next major's. None yet: every type is at its first major (`versions.py`). The compatibility check
(`compatibility.py`) refuses a new major of an inbound type without its upcaster here; reading an
older major through it (its schema kept in schemas/ beside the new one) is built with the first
such bump.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}
