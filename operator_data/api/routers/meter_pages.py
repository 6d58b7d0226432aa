"""A meter's readings page: the latest credit first (the answer to "what is my meter's
credit?"), the credit as a chart, readings, alarms with what they mean, purchases. Each
table pages on its own (`rc`, `ac`, `pc` cursors), the others staying where they were."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from operator_data.api import meter_readings
from operator_data.api.deps import Ctx, audit, language_of
from operator_data.api.helpdesk_texts import alarm_meaning
from operator_data.api.present import WIB
from operator_data.api.queries import encode_cursor
from operator_data.api.routers.page_kit import render, texts
from operator_data.api.routers.pages import Viewer
from operator_data.api.value_chart import value_chart

router = APIRouter(include_in_schema=False)

MeterNumber = Annotated[str, Path(pattern=r"^[0-9]{11}$")]
PageCursor = Annotated[str, Query(max_length=200)]
#: Readings in the chart: two days of the usual half-hourly readings.
CHART_POINTS = 96
TABLE_ROWS = 50


@router.get("/meters/{meter_number}/readings")
async def readings_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    meter_number: MeterNumber,
    rc: PageCursor = "",
    ac: PageCursor = "",
    pc: PageCursor = "",
) -> HTMLResponse:
    meter = await ctx.registry.get_meter(meter_number)  # NotFound -> 404 page
    async with ctx.store.read() as conn:  # BadCursor -> 400 page
        latest = await meter_readings.readings(conn, meter_number, limit=CHART_POINTS, cursor=None)
        table = (
            await meter_readings.readings(conn, meter_number, limit=TABLE_ROWS, cursor=rc)
            if rc
            else None
        )
        alarms = await meter_readings.alarms(conn, meter_number, limit=20, cursor=ac or None)
        buys = await meter_readings.purchases(conn, meter_number, limit=20, cursor=pc or None)
    await audit(ctx, principal, "view.meter_readings", "meter", meter_number)
    lang = language_of(request)
    t = texts(request)
    oldest_first = list(reversed(latest.rows))
    chart = value_chart(
        [r["received_at"].astimezone(WIB).strftime("%d/%m %H:%M") for r in oldest_first],
        [r["credit_kwh"] for r in oldest_first],
        t["credit_chart"],
        "kWh",
    )
    cursors = {"rc": rc, "ac": ac, "pc": pc}

    def older(key: str, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        kept = {k: v for k, v in cursors.items() if v and k != key}
        return f"/meters/{meter_number}/readings?" + urlencode({**kept, key: cursor})

    if table is not None:
        table_rows, table_next = table.rows, table.next_cursor
    else:  # the first page of the table is the newest of the chart's readings
        table_rows = latest.rows[:TABLE_ROWS]
        last = table_rows[-1] if len(latest.rows) > TABLE_ROWS else None
        table_next = encode_cursor(last["received_at"], str(last["id"])) if last else None
    return render(
        request,
        "meter_readings.html",
        principal,
        {
            "meter": meter,
            "latest": latest.rows[0] if latest.rows else None,
            "chart": chart if latest.rows else None,
            "readings": table_rows,
            "alarms": [{**a, "meaning": alarm_meaning(a["code"], lang)} for a in alarms.rows],
            "purchases": buys.rows,
            "readings_older": older("rc", table_next),
            "alarms_older": older("ac", alarms.next_cursor),
            "purchases_older": older("pc", buys.next_cursor),
            "newest_url": f"/meters/{meter_number}/readings" if any(cursors.values()) else None,
        },
    )


@router.get("/readings")
async def readings_lookup(
    request: Request,
    principal: Viewer,
    meter_number: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """The menu's entry: a meter number, then its readings page."""
    compact = meter_number.strip().replace(" ", "").replace("-", "")
    if re.fullmatch(r"[0-9]{11}", compact):
        return RedirectResponse(
            f"/meters/{compact}/readings", status_code=status.HTTP_303_SEE_OTHER
        )
    t = texts(request)
    return render(
        request,
        "lookup.html",
        principal,
        {
            "title": t["readings"],
            "hint": t["lookup_meter"],
            "action": "/readings",
            "field": "meter_number",
            "value": meter_number[:32],
            "digits": 11,
            "error": t["lookup_bad_meter"] if meter_number else None,
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if meter_number else 200,
    )
