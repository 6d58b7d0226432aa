"""The SLA report for a period [from, to) of WIB calendar days, grouped by day or month."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from operator_data.csv_cells import SafeWriter
from operator_data.settings import SlaTargets
from operator_data.sla import queries
from operator_data.sla.stages import STAGES, Stage
from operator_data.store import Store, utcnow

WIB = ZoneInfo("Asia/Jakarta")


def wib_midnight(day: date) -> datetime:
    """00:00 WIB of `day`, as an aware UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=WIB).astimezone(UTC)


#: The columns of the report's CSV (and of `pintar sla report --format table|csv`): one row
#: per stage and period, plus a `total` row per stage.
CSV_COLUMNS = (
    "stage",
    "target_ms",
    "period",
    "count",
    "completed",
    "within_target",
    "overdue",
    "pending",
    "percent_within",
    "p50_ms",
    "p95_ms",
    "p99_ms",
)


@dataclass(frozen=True, slots=True)
class Figures:
    """One stage in one period.

    `count` = completed + overdue (subjects whose outcome is known); `pending` have not
    ended and are still inside their target. Percentiles are over completed durations.
    """

    period: str
    count: int
    completed: int
    within_target: int
    overdue: int
    pending: int
    percent_within: float | None
    p50_ms: int | None
    p95_ms: int | None
    p99_ms: int | None


@dataclass(frozen=True, slots=True)
class StageReport:
    stage: str
    description: str
    target_ms: int
    periods: tuple[Figures, ...]
    total: Figures


@dataclass(frozen=True, slots=True)
class Breach:
    stage: str
    subject_id: str
    started_at: datetime
    ended_at: datetime | None  # None: never reached within the target (overdue)
    duration_ms: int | None
    target_ms: int


@dataclass(frozen=True, slots=True)
class SlaReport:
    from_day: date
    to_day: date
    group: str
    as_of: datetime
    stages: tuple[StageReport, ...]
    breaches: tuple[Breach, ...]

    def to_dict(self) -> dict[str, Any]:
        def stamp(value: datetime | None) -> str | None:
            return None if value is None else value.astimezone(UTC).isoformat()

        return {
            "from": self.from_day.isoformat(),
            "to": self.to_day.isoformat(),
            "group": self.group,
            "as_of": stamp(self.as_of),
            "percentile_definition": "nearest rank: value at rank ceil(P/100*n), ascending",
            "stages": [
                {
                    "stage": s.stage,
                    "description": s.description,
                    "target_ms": s.target_ms,
                    "periods": [asdict(f) for f in s.periods],
                    "total": asdict(s.total),
                }
                for s in self.stages
            ],
            "breaches": [
                {
                    "stage": b.stage,
                    "subject_id": b.subject_id,
                    "started_at": stamp(b.started_at),
                    "ended_at": stamp(b.ended_at),
                    "duration_ms": b.duration_ms,
                    "target_ms": b.target_ms,
                }
                for b in self.breaches
            ],
        }

    def to_csv(self) -> str:
        """One row per stage and period (plus a `total` row per stage), with a header."""
        fields = list(CSV_COLUMNS)
        out = io.StringIO()
        writer = SafeWriter(out, lineterminator="\n")
        writer.writerow(fields)
        for s in self.stages:
            for f in (*s.periods, s.total):
                row = asdict(f)
                writer.writerow(
                    [s.stage, s.target_ms]
                    + ["" if row[name] is None else row[name] for name in fields[2:]]
                )
        return out.getvalue()


def percent_within(within: int, count: int) -> float | None:
    """The report's percentage (2 decimals), also the SLA dashboard's."""
    return None if count == 0 else round(100.0 * within / count, 2)


async def _figures(store: Store, d: Any, target_ms: int, as_of_ms: int) -> dict[str, Figures]:
    async with store.read() as conn:
        count_rows = (
            await conn.execute(queries.counts(d, store.dialect, target_ms, as_of_ms))
        ).all()
        pct_rows = {r.period: r for r in await conn.execute(queries.percentiles(d))}
    result: dict[str, Figures] = {}
    for r in count_rows:
        p = pct_rows.get(r.period)
        count = int(r.completed) + int(r.overdue)
        result[str(r.period)] = Figures(
            period=str(r.period),
            count=count,
            completed=int(r.completed),
            within_target=int(r.within),
            overdue=int(r.overdue),
            pending=int(r.started) - count,
            percent_within=percent_within(int(r.within), count),
            p50_ms=None if p is None or p.p50 is None else int(p.p50),
            p95_ms=None if p is None or p.p95 is None else int(p.p95),
            p99_ms=None if p is None or p.p99 is None else int(p.p99),
        )
    return result


_EMPTY_TOTAL = Figures("total", 0, 0, 0, 0, 0, None, None, None, None)


async def stage_report(
    store: Store,
    stage: Stage,
    targets: SlaTargets,
    start: datetime,
    end: datetime,
    group: str,
    as_of: datetime,
) -> tuple[StageReport, list[Breach]]:
    target_ms = stage.target_ms(targets)
    as_of_ms = round(as_of.timestamp() * 1000)
    periods = await _figures(
        store, queries.durations(stage, store.dialect, start, end, group), target_ms, as_of_ms
    )
    totals = await _figures(
        store, queries.durations(stage, store.dialect, start, end, "total"), target_ms, as_of_ms
    )
    d = queries.durations(stage, store.dialect, start, end, "total")
    async with store.read() as conn:
        rows = await conn.execute(queries.breaches(d, store.dialect, target_ms, as_of_ms))
        found = [
            Breach(
                stage=stage.name,
                subject_id=str(r.subject),
                started_at=r.started,
                ended_at=r.ended,
                duration_ms=None if r.duration_ms is None else int(r.duration_ms),
                target_ms=target_ms,
            )
            for r in rows
        ]
    report = StageReport(
        stage=stage.name,
        description=stage.description,
        target_ms=target_ms,
        periods=tuple(periods[k] for k in sorted(periods)),
        total=totals.get("total", _EMPTY_TOTAL),
    )
    return report, found


async def sla_report(
    store: Store,
    targets: SlaTargets,
    from_day: date,
    to_day: date,
    *,
    group: str = "day",
    as_of: datetime | None = None,
    stages: tuple[Stage, ...] = STAGES,
) -> SlaReport:
    """Figures for stages started in [from_day, to_day) (WIB days). A subject that has not
    ended counts as a breach once its target has passed at `as_of` (default: now, capped
    at the end of the period plus the target, so an old report does not change)."""
    if group not in ("day", "month"):
        raise ValueError(f"group must be day or month, not {group!r}")
    if to_day <= from_day:
        raise ValueError(f"empty period: --to {to_day} is not after --from {from_day}")
    start, end = wib_midnight(from_day), wib_midnight(to_day)
    when = as_of or utcnow()
    reports: list[StageReport] = []
    found: list[Breach] = []
    for stage in stages:
        # Cap per stage so that re-running a closed period later gives the same figures.
        cap = end + timedelta(milliseconds=stage.target_ms(targets))
        report, breaches = await stage_report(
            store, stage, targets, start, end, group, min(when, cap)
        )
        reports.append(report)
        found.extend(breaches)
    return SlaReport(from_day, to_day, group, when, tuple(reports), tuple(found))
