"""The only source of time. The business date is the date in Europe/Brussels unless fixed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")


@dataclass(frozen=True)
class Clock:
    fixed_today: dt.date | None = None

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        return self.fixed_today or self.now().astimezone(BRUSSELS).date()
