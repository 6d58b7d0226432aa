"""The report as the CLI and the page show it: reads the facts (store) and computes the
figures (report). The only place the two meet."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.complaints import report, store
from operator_data.complaints.calendar import WIB, HolidayCalendar

# A complaint due in month M was received at most this many months before M ends: 15
# working days are three weeks plus holidays (Lebaran's two weeks off at the most).
_LOOKBACK_MONTHS = 2


def _month_start(year: int, month: int) -> datetime:
    y, m0 = divmod(year * 12 + month - 1, 12)
    return datetime.combine(datetime(y, m0 + 1, 1).date(), time(0), tzinfo=WIB)


async def monthly(
    conn: AsyncConnection, year: int, month: int, cal: HolidayCalendar, *, as_of: datetime
) -> dict[str, Any]:
    """The month's QoS figures with the 12-month disruption figures ending with it."""
    start = _month_start(year, month - 11 - _LOOKBACK_MONTHS)
    end = _month_start(year, month + 1)
    found = await store.facts(conn, start, end)
    customers = await store.customer_count(conn)
    return {
        **report.monthly(found, year, month, cal, as_of=as_of).to_dict(),
        "disruption": report.disruption(found, year, month, customers, as_of=as_of).to_dict(),
    }


async def annual(
    conn: AsyncConnection, year: int, cal: HolidayCalendar, *, as_of: datetime
) -> dict[str, Any]:
    start = _month_start(year, 1 - _LOOKBACK_MONTHS)
    found = await store.facts(conn, start, _month_start(year + 1, 1))
    customers = await store.customer_count(conn)
    return report.annual(found, year, cal, customers, as_of=as_of)
