"""SQL for the SLA report, one code path for SQLite and PostgreSQL.

Per stage a `durations` subquery yields one row per subject (subject, started, ended,
duration_ms, period); the aggregates and the percentiles (ROW_NUMBER/COUNT windows) run
in the database on top of it, so a month of a million meters never comes into Python.

Percentile definition (nearest rank): pP is the value at 1-based rank ceil(P/100 * n)
of the n completed durations sorted ascending, i.e. the smallest duration such that at
least P % of the durations are no longer than it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    Subquery,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
)

from operator_data.sla.stages import Source, Stage, StageKind, StatePoint
from operator_data.store import schema
from operator_data.store.reporting_schema import ap2t_batches
from operator_data.store.states import Direction, Flow
from operator_data.store.types import UTCDateTime

GRAINS = ("day", "month", "total")
_SQLITE_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m"}
_PG_FORMATS = {"day": "YYYY-MM-DD", "month": "YYYY-MM"}
PERCENTILES = (50, 95, 99)
# messages.kind of the customer's receipt SMS (operator_data/hub/token_batch.py).
RECEIPT_KIND = "receipt"


def epoch_ms(dialect: str, column: ColumnElement[Any]) -> ColumnElement[int]:
    """Milliseconds since the Unix epoch of a stored UTC timestamp."""
    if dialect == "postgresql":
        return cast(func.round(extract("epoch", column) * 1000), BigInteger)
    # SQLite keeps naive UTC text; julianday() has ~50 µs resolution at today's dates.
    return cast(func.round((func.julianday(column) - 2440587.5) * 86400000.0), BigInteger)


def wib_period(dialect: str, column: ColumnElement[Any], grain: str) -> ColumnElement[str]:
    """The WIB (Asia/Jakarta) calendar day or month of a UTC timestamp, as text."""
    if grain == "total":
        return literal("total")
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Jakarta", column), _PG_FORMATS[grain])
    # WIB is UTC+7 all year (Indonesia has no daylight saving time).
    return func.strftime(_SQLITE_FORMATS[grain], column, "+7 hours")


def _history(point: StatePoint) -> Subquery:
    """(subject, state, at) rows of a source, keyed by transaction id."""
    if point.source is Source.TRANSACTION:
        h = schema.transaction_states
        return (
            select(h.c.transaction_id.label("subject"), h.c.state, h.c.at)
            .where(h.c.state.in_(sorted(point.states)))
            .subquery()
        )
    m, ms = schema.messages, schema.message_states
    if point.source is Source.RECEIPT_MESSAGE:
        which = and_(m.c.flow == Flow.HUB_TO_CUSTOMER.value, m.c.kind == RECEIPT_KIND)
    else:
        which = m.c.flow == Flow.HUB_TO_METER.value
    return (
        select(m.c.transaction_id.label("subject"), ms.c.state, ms.c.at)
        .select_from(ms.join(m, m.c.id == ms.c.message_id))
        .where(
            m.c.transaction_id.is_not(None),
            m.c.direction == Direction.OUT.value,
            which,
            ms.c.state.in_(sorted(point.states)),
        )
        .subquery()
    )


def durations(stage: Stage, dialect: str, start: datetime, end: datetime, grain: str) -> Subquery:
    """One row per subject whose stage started in [start, end)."""
    if stage.kind is StageKind.AP2T_INTERVAL:
        # A day counts once, from its first acknowledged revision: a correction of the
        # day acknowledged later (ap2t_batches.revision > 1) is no new day's data.
        b = (
            select(
                ap2t_batches.c.day,
                func.min(ap2t_batches.c.acknowledged_at).label("acknowledged_at"),
            )
            .where(ap2t_batches.c.acknowledged_at.is_not(None))
            .group_by(ap2t_batches.c.day)
            .subquery()
        )
        # LEAD over the acknowledged batches: each acknowledgement opens an interval that
        # the next one closes; the newest is still open (pending or overdue).
        intervals = (
            select(
                cast(b.c.day, String(32)).label("subject"),
                b.c.acknowledged_at.label("started"),
                func.lead(b.c.acknowledged_at, type_=UTCDateTime())
                .over(order_by=(b.c.acknowledged_at, b.c.day))
                .label("ended"),
            )
            .where(b.c.acknowledged_at.is_not(None))
            .subquery()
        )
        paired = (
            select(intervals.c.subject, intervals.c.started, intervals.c.ended)
            .where(intervals.c.started >= start, intervals.c.started < end)
            .subquery()
        )
    else:
        assert stage.start is not None and stage.end is not None
        first = _history(stage.start)
        starts = (
            select(first.c.subject, func.min(first.c.at).label("started"))
            .group_by(first.c.subject)
            .having(and_(func.min(first.c.at) >= start, func.min(first.c.at) < end))
            .subquery()
        )
        last = _history(stage.end)
        paired = (
            select(starts.c.subject, starts.c.started, func.min(last.c.at).label("ended"))
            .select_from(
                starts.outerjoin(
                    last, and_(last.c.subject == starts.c.subject, last.c.at >= starts.c.started)
                )
            )
            .group_by(starts.c.subject, starts.c.started)
            .subquery()
        )
    return select(
        paired.c.subject,
        paired.c.started,
        paired.c.ended,
        (epoch_ms(dialect, paired.c.ended) - epoch_ms(dialect, paired.c.started)).label(
            "duration_ms"
        ),
        wib_period(dialect, paired.c.started, grain).label("period"),
    ).subquery()


def _overdue(d: Subquery, dialect: str, target_ms: int, as_of_ms: int) -> ColumnElement[bool]:
    return and_(d.c.ended.is_(None), epoch_ms(dialect, d.c.started) + target_ms < as_of_ms)


def counts(d: Subquery, dialect: str, target_ms: int, as_of_ms: int) -> Select[Any]:
    one = literal(1)
    return (
        select(
            d.c.period,
            func.count().label("started"),
            func.count(d.c.ended).label("completed"),
            func.coalesce(func.sum(case((d.c.duration_ms <= target_ms, one), else_=0)), 0).label(
                "within"
            ),
            func.coalesce(
                func.sum(case((_overdue(d, dialect, target_ms, as_of_ms), one), else_=0)), 0
            ).label("overdue"),
        )
        .group_by(d.c.period)
        .order_by(d.c.period)
    )


def percentiles(d: Subquery) -> Select[Any]:
    ranked = (
        select(
            d.c.period,
            d.c.duration_ms,
            func.row_number()
            .over(partition_by=d.c.period, order_by=(d.c.duration_ms, d.c.subject))
            .label("rn"),
            func.count().over(partition_by=d.c.period).label("n"),
        )
        .where(d.c.duration_ms.is_not(None))
        .subquery()
    )
    # ceil(P * n / 100) in integer arithmetic: (P * n + 99) // 100.
    columns = [
        func.max(case((ranked.c.rn == (p * ranked.c.n + 99) // 100, ranked.c.duration_ms))).label(
            f"p{p}"
        )
        for p in PERCENTILES
    ]
    return select(ranked.c.period, *columns).group_by(ranked.c.period)


def breaches(d: Subquery, dialect: str, target_ms: int, as_of_ms: int) -> Select[Any]:
    return (
        select(d.c.subject, d.c.started, d.c.ended, d.c.duration_ms)
        .where(or_(d.c.duration_ms > target_ms, _overdue(d, dialect, target_ms, as_of_ms)))
        .order_by(d.c.started, d.c.subject)
    )
