"""The complaint clock for the operators' alerts: how many complaints are open and how
many of those are past the 15-working-day target (docs/runbook.md, "Alerts"). Reads the
working queue only (open and assigned complaints, through ix_complaints_state_received_at),
which a helpdesk keeps short; resolved complaints are never read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.complaints.calendar import HolidayCalendar, wib_day
from operator_data.complaints.store import WORKING
from operator_data.complaints.tables import complaints


@dataclass(frozen=True, slots=True)
class ComplaintClock:
    open: int
    #: Open past their due day (the 15th working day), third-party ones left out as the
    #: target leaves them out.
    overdue: int
    #: Open past the last working day of their due day's month: the rule's last chance.
    past_month_end: int


async def complaint_clock(
    conn: AsyncConnection, cal: HolidayCalendar, now: datetime
) -> ComplaintClock:
    c = complaints
    rows = await conn.execute(
        select(c.c.received_at, c.c.third_party).where(c.c.state.in_(WORKING))
    )
    today = wib_day(now)
    total = overdue = late = 0
    for received_at, third_party in rows:
        total += 1
        if third_party:
            continue
        overdue += today > cal.due_on(received_at)
        late += today > cal.final_due_on(received_at)
    return ComplaintClock(total, overdue, late)
