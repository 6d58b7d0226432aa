"""Materialise SLA measurements into `sla_events` before their source histories expire.

The message log (and so the token-to-network stage) may be purged after 3 months, but
SLA measurements must be kept through the next financial year (5/2021 art. 222(m)); the
retention purge calls `record_events` for what it is about to delete. One row per stage
and subject, written once (INSERT ... SELECT ... WHERE NOT EXISTS, all in the database).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, and_, case, exists, insert, literal, or_, select

from operator_data.settings import SlaTargets
from operator_data.sla import queries
from operator_data.sla.stages import STAGES, Stage, StageKind
from operator_data.store import Store, schema
from operator_data.store.types import UTCDateTime

SUBJECT_TYPES = {StageKind.TRANSITION: "transaction", StageKind.AP2T_INTERVAL: "ap2t_batch"}


async def record_events(
    store: Store,
    targets: SlaTargets,
    start: datetime,
    end: datetime,
    *,
    as_of: datetime,
    stages: tuple[Stage, ...] = STAGES,
) -> int:
    """Write the completed and overdue measurements of stages started in [start, end)
    that are not in sla_events yet; returns how many rows were added."""
    ev = schema.sla_events
    as_of_ms = round(as_of.timestamp() * 1000)
    added = 0
    for stage in stages:
        target_ms = stage.target_ms(targets)
        d = queries.durations(stage, store.dialect, start, end, "total")
        overdue = and_(
            d.c.ended.is_(None),
            queries.epoch_ms(store.dialect, d.c.started) + target_ms < as_of_ms,
        )
        rows = select(
            literal(stage.name),
            literal(SUBJECT_TYPES[stage.kind]),
            d.c.subject,
            d.c.started,
            d.c.ended,
            d.c.duration_ms,
            literal(target_ms),
            case(
                (d.c.duration_ms <= target_ms, literal(True, Boolean)),
                else_=literal(False, Boolean),
            ),
            literal(as_of, UTCDateTime()),
        ).where(
            or_(d.c.ended.is_not(None), overdue),
            ~exists().where(ev.c.metric == stage.name, ev.c.subject_id == d.c.subject),
        )
        columns = [
            "metric",
            "subject_type",
            "subject_id",
            "started_at",
            "ended_at",
            "duration_ms",
            "target_ms",
            "met",
            "recorded_at",
        ]
        async with store.begin() as conn:
            result = await conn.execute(insert(ev).from_select(columns, rows))
            added += max(result.rowcount, 0)
    return added
