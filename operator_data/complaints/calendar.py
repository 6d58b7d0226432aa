"""The working-day clock of the complaint target (pure: no I/O beyond reading the
holiday files it is given).

"Working day" = Monday to Friday, except national holidays and cuti bersama (the QoS
standard's definition; the days are decreed yearly by SKB 3 Menteri, so they are data:
holidays/<year>.toml, one file a year, replaceable by the operator's own files).

The rules, in WIB calendar days:
- a complaint received on day D is due on the 15th working day after D (D itself is not
  counted, whatever the hour; one received on a Saturday counts from Monday);
- the rest (not resolved by then) are due by the last working day of the month in which
  that 15th day falls ("the rest by the month's last working day").
A year with no holiday file counts weekends only; `gaps` names such years so a report
can say its figures rest on an incomplete calendar instead of silently being generous.
"""

from __future__ import annotations

import calendar as _gregorian
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")
TARGET_WORKING_DAYS = 15
HOLIDAY_DIR = Path(__file__).resolve().parent / "holidays"
_KINDS = ("national", "cuti_bersama")


class CalendarError(ValueError):
    """A holiday file that cannot be used (its problem in the message)."""


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    name: str
    kind: str  # national | cuti_bersama
    estimated: bool = False  # not yet from a decree (see the file's header)


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    holidays: tuple[Holiday, ...] = ()
    years: frozenset[int] = frozenset()  # the years a file covers
    sources: dict[int, str] = field(default_factory=dict)
    _days: frozenset[date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_days", frozenset(h.day for h in self.holidays))

    def is_holiday(self, day: date) -> bool:
        return day in self._days

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and not self.is_holiday(day)

    def gaps(self, days: Iterable[date]) -> list[int]:
        """The years among `days` that no holiday file covers."""
        return sorted({d.year for d in days} - self.years)

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start` (`start` itself not counted)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        day, counted = start, 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (0 if end <= start)."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count

    def last_working_day(self, year: int, month: int) -> date:
        day = date(year, month, _gregorian.monthrange(year, month)[1])
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def due_on(self, received_at: datetime) -> date:
        """The WIB day by which a complaint received at `received_at` is due."""
        return self.add_working_days(wib_day(received_at), TARGET_WORKING_DAYS)

    def final_due_on(self, received_at: datetime) -> date:
        """The last working day of the month its 15-working-day due day falls in."""
        due = self.due_on(received_at)
        return self.last_working_day(due.year, due.month)


def wib_day(at: datetime) -> date:
    if at.tzinfo is None:
        raise ValueError("a complaint time must be timezone-aware")
    return at.astimezone(WIB).date()


def _holiday(entry: object, year: int, path: Path) -> Holiday:
    if not isinstance(entry, dict):
        raise CalendarError(f"{path}: each holiday must be a table with date, kind and name")
    day, kind, name = entry.get("date"), entry.get("kind"), entry.get("name")
    if not isinstance(day, date) or isinstance(day, datetime):
        raise CalendarError(f"{path}: holiday date must be a TOML date (YYYY-MM-DD): {entry!r}")
    if day.year != year:
        raise CalendarError(f"{path}: {day} is not in the file's year {year}")
    if kind not in _KINDS:
        raise CalendarError(f"{path}: kind must be one of {', '.join(_KINDS)}: {entry!r}")
    if not isinstance(name, str) or not name.strip():
        raise CalendarError(f"{path}: holiday {day} needs a name")
    estimated = entry.get("estimated", False)
    if not isinstance(estimated, bool):
        raise CalendarError(f"{path}: estimated must be true or false: {entry!r}")
    return Holiday(day, name.strip(), kind, estimated)


def read_file(path: Path) -> tuple[int, str, list[Holiday]]:
    """One year's file: (year, source, holidays)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as failure:
        raise CalendarError(f"cannot read holiday file {path}: {failure.strerror}") from failure
    except tomllib.TOMLDecodeError as failure:
        raise CalendarError(f"{path} is not valid TOML: {failure}") from failure
    year, source, entries = data.get("year"), data.get("source"), data.get("holidays")
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise CalendarError(f"{path}: year must be a number between 2000 and 2100")
    if not isinstance(source, str) or not source.strip():
        raise CalendarError(f"{path}: name the decree the dates come from in `source`")
    if not isinstance(entries, list):
        raise CalendarError(f"{path}: `holidays` must be a list")
    return year, source.strip(), [_holiday(e, year, path) for e in entries]


def load(extra: Sequence[Path] = (), *, shipped: bool = True) -> HolidayCalendar:
    """The shipped years (holidays/*.toml), then `extra` files: a file for a year already
    loaded replaces that year (the operator's decreed list over our estimate)."""
    paths = sorted(HOLIDAY_DIR.glob("*.toml")) if shipped else []
    by_year: dict[int, tuple[str, list[Holiday]]] = {}
    for path in [*paths, *extra]:
        year, source, holidays = read_file(Path(path))
        by_year[year] = (source, holidays)
    return HolidayCalendar(
        holidays=tuple(h for _, (_, hs) in sorted(by_year.items()) for h in hs),
        years=frozenset(by_year),
        sources={year: source for year, (source, _) in by_year.items()},
    )


_DEFAULT: HolidayCalendar | None = None


def default() -> HolidayCalendar:
    """The shipped calendar, read once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load()
    return _DEFAULT
