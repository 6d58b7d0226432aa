"""The helpdesk's SLA dashboard, from the same `sla_report` as `pintar sla report`.

The dashboard used to count `sla_events`, which holds the breaches only (and the
measurements the retention purge materialises), so every stage read 0 % met. Now today,
this month and the daily series are periods of one report over the state histories:
`pintar sla report --from <day> --to <next day>` run at the same moment gives the same
counts and percentages (tests/operator_data/test_sla_dashboard_issue17.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from operator_data.settings import SlaTargets
from operator_data.sla.events import SUBJECT_TYPES
from operator_data.sla.report import WIB, Figures, SlaReport, percent_within, sla_report
from operator_data.sla.stages import STAGES_BY_NAME
from operator_data.store import Store


@dataclass(frozen=True, slots=True)
class StageSummary:
    """One stage over a period, in the dashboard's words: `total` = completed + overdue
    (`count` of the report), `met` = within target, `breached` = the rest of `total`;
    `pending` have not ended and are still inside their target."""

    metric: str
    target_ms: int
    total: int
    met: int
    breached: int
    pending: int
    percent_met: float | None


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    met: int  # all stages together
    decided: int
    percent: float | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    today: tuple[StageSummary, ...]
    this_month: tuple[StageSummary, ...]
    daily: tuple[DayFigures, ...]
    breaches: tuple[dict[str, Any], ...]  # newest first
    targets_ms: dict[str, int]  # the targets every figure above was measured against


def _summary(metric: str, target_ms: int, figures: list[Figures]) -> StageSummary:
    total = sum(f.count for f in figures)
    met = sum(f.within_target for f in figures)
    return StageSummary(
        metric=metric,
        target_ms=target_ms,
        total=total,
        met=met,
        breached=total - met,
        pending=sum(f.pending for f in figures),
        percent_met=percent_within(met, total),
    )


def wib_today(now: datetime) -> date:
    return now.astimezone(WIB).date()


async def sla_dashboard(
    store: Store, targets: SlaTargets, now: datetime, *, days: int = 14, breaches: int = 50
) -> Dashboard:
    """Today, this month (WIB calendar) and the last `days` days, measured at `now`."""
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    today = wib_today(now)
    tomorrow = today + timedelta(days=1)
    month = today.replace(day=1)
    first_daily = today - timedelta(days=days - 1)
    # One report by day: a subject belongs to the day its stage started, so the counts of
    # a month are the sums of its days (percentiles are not shown, they would not add up).
    report: SlaReport = await sla_report(
        store, targets, min(month, first_daily), tomorrow, group="day", as_of=now
    )
    today_key = today.isoformat()
    month_key = month.isoformat()
    today_rows, month_rows = [], []
    for stage in report.stages:
        today_rows.append(
            _summary(
                stage.stage, stage.target_ms, [f for f in stage.periods if f.period == today_key]
            )
        )
        month_rows.append(
            _summary(
                stage.stage, stage.target_ms, [f for f in stage.periods if f.period >= month_key]
            )
        )
    daily = []
    for n in range(days):
        day = first_daily + timedelta(days=n)
        key = day.isoformat()
        figures = [f for s in report.stages for f in s.periods if f.period == key]
        met = sum(f.within_target for f in figures)
        decided = sum(f.count for f in figures)
        daily.append(DayFigures(day, met, decided, percent_within(met, decided)))
    newest = sorted(report.breaches, key=lambda b: (b.started_at, b.subject_id), reverse=True)
    shown = tuple(
        {
            "metric": b.stage,
            "subject_type": SUBJECT_TYPES[STAGES_BY_NAME[b.stage].kind],
            "subject_id": b.subject_id,
            "started_at": b.started_at,
            "ended_at": b.ended_at,
            "duration_ms": b.duration_ms,
            "target_ms": b.target_ms,
        }
        for b in newest[:breaches]
    )
    return Dashboard(
        today=tuple(today_rows),
        this_month=tuple(month_rows),
        daily=tuple(daily),
        breaches=shown,
        targets_ms={s.stage: s.target_ms for s in report.stages},
    )
