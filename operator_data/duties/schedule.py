"""When a duty runs: pure functions of the settings and a given instant (WIB days).

A daily duty runs at a WIB wall-clock time (Asia/Jakarta has no daylight saving, so every
day has each time exactly once) and covers the WIB day before the one it runs on: the
00:30 AP2T run of 3 March exports 2 March.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")
OFF = "off"
_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_time_of_day(value: str) -> time | None:
    """A WIB time "HH:MM" (00:00 to 23:59) as a time, "off" as None; else a ValueError."""
    text = value.strip().lower()
    if text == OFF:
        return None
    match = _HH_MM.match(text)
    if match is None:
        raise ValueError(f"{value!r}: expected a WIB time HH:MM (00:00 to 23:59) or {OFF!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"{at.isoformat()} has no time zone")
    return at


@dataclass(frozen=True, slots=True)
class DailySchedule:
    """Once a day at `at`, WIB."""

    at: time

    def slot_on(self, day: date) -> datetime:
        """The run on WIB day `day`, in UTC."""
        return datetime.combine(day, self.at, tzinfo=WIB).astimezone(UTC)

    def next_after(self, after: datetime) -> datetime:
        """The first run strictly after `after` (UTC)."""
        day = _aware(after).astimezone(WIB).date()
        slot = self.slot_on(day)
        return slot if slot > after else self.slot_on(day + timedelta(days=1))

    def last_at_or_before(self, at: datetime) -> datetime:
        """The latest run at or before `at` (UTC)."""
        day = _aware(at).astimezone(WIB).date()
        slot = self.slot_on(day)
        return slot if slot <= at else self.slot_on(day - timedelta(days=1))

    @staticmethod
    def covered_day(slot: datetime) -> date:
        """The WIB day a run at `slot` is about: the day before the run's own WIB day."""
        return _aware(slot).astimezone(WIB).date() - timedelta(days=1)


def backoff(failures: int, first_s: float, max_s: float) -> float:
    """Seconds before the next try after `failures` failures in a row: first_s, doubled
    each time, at most max_s."""
    if failures < 1:
        raise ValueError(f"failures must be at least 1, got {failures}")
    if first_s <= 0 or max_s < first_s:
        raise ValueError(f"need 0 < first_s <= max_s, got {first_s} and {max_s}")
    # Capped exponent: 2**1000 would be a float overflow long before max_s matters.
    return min(max_s, first_s * float(2 ** min(failures - 1, 60)))
