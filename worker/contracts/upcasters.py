"""Upcasters: an inbound message of an older major version brought to the current shape, so the
rules only ever see the latest one. One function per (type, old major), from that major's `data`
to the next one's; `versions.current_data` chains them. None yet: every type is at its first
major (`versions.py`). A new major of an inbound type keeps its old schema as
`schemas/<type>@<major>.json`, which messages claiming it are validated against first; the
compatibility check (`compatibility.py`) refuses the new major without its upcaster here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}
