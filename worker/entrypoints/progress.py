"""Progress of a long operator command: a bar on a terminal (tqdm), nothing under `--json` or
when standard error is not a terminal (a job's log stays clean)."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def bar(total: int | None, unit: str, *, quiet: bool) -> tqdm[Any]:
    """`quiet`: the command's `--json`."""
    shown = not quiet and sys.stderr.isatty()
    return tqdm(total=total, unit=unit, disable=not shown, file=sys.stderr)
