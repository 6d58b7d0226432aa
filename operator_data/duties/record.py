"""Which duty ran for which WIB day, cluster-wide: one `audit_log` row per duty and day
(action `duty.done`, subject `duty` / `<name>:<YYYY-MM-DD>`, found by
ix_audit_log_subject). Written by the worker that ran it while it still holds the duty's
`run_once` lock, so a worker that takes the lock afterwards sees it and does not run the
duty again; and the helpdesk's audit trail says who ran what, when, with what result."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import func, insert, select

from operator_data.store import Store, schema

ACTION = "duty.done"
SUBJECT_TYPE = "duty"

Summary = Mapping[str, str | int | float | bool | None]


def subject(name: str, day: date) -> str:
    return f"{name}:{day.isoformat()}"


async def done_count(store: Store, name: str, day: date) -> int:
    """How many times the duty was recorded done for `day`: 1, or 0 (tests check it)."""
    a = schema.audit_log
    async with store.read() as conn:
        found = await conn.scalar(
            select(func.count())
            .select_from(a)
            .where(
                a.c.subject_type == SUBJECT_TYPE,
                a.c.subject_id == subject(name, day),
                a.c.action == ACTION,
            )
        )
    return int(found or 0)


async def is_done(store: Store, name: str, day: date) -> bool:
    return await done_count(store, name, day) > 0


async def mark_done(
    store: Store, name: str, day: date, *, worker: str, at: datetime, summary: Summary
) -> None:
    async with store.begin() as conn:
        await conn.execute(
            insert(schema.audit_log).values(
                at=at,
                actor=f"duty:{worker}"[:64],
                action=ACTION,
                subject_type=SUBJECT_TYPE,
                subject_id=subject(name, day)[:64],
                detail=dict(summary),
            )
        )
