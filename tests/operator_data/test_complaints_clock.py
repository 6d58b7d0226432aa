"""The complaint clock the alerts read: open complaints, and those past their 15-working-
day due day or past their due month's last working day (third-party ones left out)."""

from __future__ import annotations

from datetime import datetime, timedelta

from operator_data.complaints import calendar
from operator_data.complaints.clock import complaint_clock
from operator_data.complaints.store import NewComplaint, record, resolve, set_third_party
from operator_data.store import Store

WIB = calendar.WIB


def _new(received_at: datetime) -> NewComplaint:
    return NewComplaint(
        channel="call",
        category="token",
        text="token tidak masuk",
        received_at=received_at,
        opened_by="helpdesk-1",
        customer_id="512345678901",
    )


async def test_the_clock_counts_open_overdue_and_past_month_end(store: Store) -> None:
    cal = calendar.default()
    now = datetime(2026, 12, 4, 10, 0, tzinfo=WIB)
    fresh = now - timedelta(days=2)  # due in December: in time
    old = datetime(2026, 11, 3, 9, 0, tzinfo=WIB)  # due late November: both clocks ran out
    older = datetime(2026, 10, 1, 9, 0, tzinfo=WIB)  # due in October: past month end too
    async with store.begin() as conn:
        await record(conn, _new(fresh))
        await record(conn, _new(old))
        await record(conn, _new(older))
        third = await record(conn, _new(older))
        done = await record(conn, _new(older))
        await set_third_party(
            conn, third, third_party=True, reason="the bank's outage", actor="sup", at=now
        )
        await resolve(conn, done, code="token_resent", text="token re-sent", actor="sup", at=now)
    async with store.read() as conn:
        clock = await complaint_clock(conn, cal, now)
    assert clock.open == 4  # the resolved one is not in the working queue
    assert cal.due_on(old) < now.date() and cal.final_due_on(old) < now.date()
    assert (clock.overdue, clock.past_month_end) == (2, 2)  # old and older; not third party
    async with store.read() as conn:
        earlier = await complaint_clock(conn, cal, datetime(2026, 10, 2, 9, 0, tzinfo=WIB))
    assert (earlier.overdue, earlier.past_month_end) == (0, 0)  # nothing due yet then
