"""The complaint figures (pure: facts in, figures out; the store reads the facts).

Monthly (the QoS target): the complaints measured in month M are those whose
15-working-day due day falls in M, third-party-caused ones excluded. Of them:
- `within_target_pct`: resolved by the due day (target >= 90 %);
- `by_month_end_pct`: resolved by the last working day of M (the rest: target 100 %).
Measured by due day rather than by day received, every complaint of M is decided by the
end of M, so a report run after the month is final and does not change later.
Complaints received in M, resolved in M and still open are counted beside it.

Disruption (gangguan): reports per 1,000 customers over the 12 months ending with M, and
the share of them resolved. Annual: the twelve monthly reports of a year and its totals.
A percentage of nothing is None ("no complaints to measure"), never 0 or 100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from operator_data.complaints.calendar import HolidayCalendar, wib_day

TARGET_PCT = 90.0
DISRUPTION = "gangguan"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the figures need of one complaint."""

    ticket: str
    category: str
    received_at: datetime
    resolved_at: datetime | None
    third_party: bool = False


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def parse_month(text: str) -> tuple[int, int]:
    """'YYYY-MM' as (year, month); anything else is a clear ValueError."""
    parts = text.strip().split("-")
    if (
        len(parts) != 2
        or len(parts[0]) != 4
        or len(parts[1]) != 2
        or not all(p.isdigit() for p in parts)
    ):
        raise ValueError(f"month must be YYYY-MM, not {text!r}")
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise ValueError(f"month must be YYYY-MM with a real month, not {text!r}")
    return year, month


def _in_month(day: date, year: int, month: int) -> bool:
    return (day.year, day.month) == (year, month)


def _resolved_by(f: Facts, day: date) -> bool:
    return f.resolved_at is not None and wib_day(f.resolved_at) <= day


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    month: str
    measured: int  # due in the month, third party excluded
    within_target: int
    by_month_end: int
    late_tickets: tuple[str, ...]  # measured, not resolved by the month's last working day
    third_party_excluded: int
    received: int
    resolved: int
    open_now: int  # received in the month and not resolved as of `as_of`
    by_category: dict[str, int]
    last_working_day: date
    final: bool  # the month's last working day is over: the figures no longer change
    calendar_gaps: tuple[int, ...]

    @property
    def within_target_pct(self) -> float | None:
        return pct(self.within_target, self.measured)

    @property
    def by_month_end_pct(self) -> float | None:
        return pct(self.by_month_end, self.measured)

    @property
    def target_met(self) -> bool | None:
        """Both rules: >= 90 % by the due day and the rest by the month's end."""
        if not self.measured or not self.final:
            return None
        within = self.within_target_pct or 0.0
        return within >= TARGET_PCT and self.by_month_end == self.measured

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "measured": self.measured,
            "within_target": self.within_target,
            "within_target_pct": self.within_target_pct,
            "by_month_end": self.by_month_end,
            "by_month_end_pct": self.by_month_end_pct,
            "target_pct": TARGET_PCT,
            "target_met": self.target_met,
            "late_tickets": list(self.late_tickets),
            "third_party_excluded": self.third_party_excluded,
            "received": self.received,
            "resolved": self.resolved,
            "open_now": self.open_now,
            "by_category": dict(self.by_category),
            "last_working_day": self.last_working_day.isoformat(),
            "final": self.final,
            "calendar_gaps": list(self.calendar_gaps),
        }


def monthly(
    facts: Iterable[Facts], year: int, month: int, cal: HolidayCalendar, *, as_of: datetime
) -> MonthlyReport:
    facts = list(facts)
    last = cal.last_working_day(year, month)
    due = {f.ticket: cal.due_on(f.received_at) for f in facts}
    due_here = [f for f in facts if _in_month(due[f.ticket], year, month)]
    measured = [f for f in due_here if not f.third_party]
    late = [f for f in measured if not _resolved_by(f, last)]
    received = [f for f in facts if _in_month(wib_day(f.received_at), year, month)]
    today = wib_day(as_of)
    return MonthlyReport(
        month=f"{year:04d}-{month:02d}",
        measured=len(measured),
        within_target=sum(_resolved_by(f, due[f.ticket]) for f in measured),
        by_month_end=len(measured) - len(late),
        late_tickets=tuple(sorted(f.ticket for f in late)),
        third_party_excluded=len(due_here) - len(measured),
        received=len(received),
        resolved=sum(
            f.resolved_at is not None and _in_month(wib_day(f.resolved_at), year, month)
            for f in facts
        ),
        open_now=sum(not _resolved_by(f, today) for f in received),
        by_category=dict(sorted(Counter(f.category for f in received).items())),
        last_working_day=last,
        final=today > last,
        calendar_gaps=tuple(cal.gaps([last, *due.values()])),
    )


def _month_back(year: int, month: int, n: int) -> tuple[int, int]:
    y, m0 = divmod(year * 12 + month - 1 - n, 12)
    return y, m0 + 1


@dataclass(frozen=True, slots=True)
class Disruption:
    window: tuple[str, str]  # first and last month, YYYY-MM
    reports: int
    resolved: int
    customers: int

    @property
    def per_1000_customers(self) -> float | None:
        return round(1000.0 * self.reports / self.customers, 2) if self.customers else None

    @property
    def resolved_pct(self) -> float | None:
        return pct(self.resolved, self.reports)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_month": self.window[0],
            "to_month": self.window[1],
            "reports": self.reports,
            "resolved": self.resolved,
            "resolved_pct": self.resolved_pct,
            "customers": self.customers,
            "per_1000_customers": self.per_1000_customers,
        }


def disruption(
    facts: Iterable[Facts], year: int, month: int, customers: int, *, as_of: datetime
) -> Disruption:
    """Disruption reports received in the 12 months ending with `month`."""
    first = _month_back(year, month, 11)
    today = wib_day(as_of)
    inside = [
        f
        for f in facts
        if f.category == DISRUPTION
        and first <= (wib_day(f.received_at).year, wib_day(f.received_at).month) <= (year, month)
    ]
    return Disruption(
        window=(f"{first[0]:04d}-{first[1]:02d}", f"{year:04d}-{month:02d}"),
        reports=len(inside),
        resolved=sum(_resolved_by(f, today) for f in inside),
        customers=customers,
    )


def annual(
    facts: Sequence[Facts], year: int, cal: HolidayCalendar, customers: int, *, as_of: datetime
) -> dict[str, Any]:
    months = [monthly(facts, year, m, cal, as_of=as_of) for m in range(1, 13)]
    measured = sum(m.measured for m in months)
    within = sum(m.within_target for m in months)
    by_end = sum(m.by_month_end for m in months)
    return {
        "year": year,
        "months": [m.to_dict() for m in months],
        "measured": measured,
        "within_target": within,
        "within_target_pct": pct(within, measured),
        "by_month_end": by_end,
        "by_month_end_pct": pct(by_end, measured),
        "received": sum(m.received for m in months),
        "third_party_excluded": sum(m.third_party_excluded for m in months),
        "months_target_met": sum(m.target_met is True for m in months),
        "months_target_missed": sum(m.target_met is False for m in months),
        "disruption": disruption(facts, year, 12, customers, as_of=as_of).to_dict(),
    }
