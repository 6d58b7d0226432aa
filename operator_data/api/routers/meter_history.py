"""A meter's readings, alarms (with what each code means) and purchases, over the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from operator_data.api import meter_readings
from operator_data.api.deps import Ctx, Helpdesk, audit
from operator_data.api.helpdesk_texts import alarm_meaning

router = APIRouter(prefix="/api/v1", tags=["meters"])

MeterNumber = Annotated[str, Path(pattern=r"^[0-9]{11}$")]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


class Reading(BaseModel):
    id: int
    received_at: datetime
    meter_time: datetime | None = Field(description="the meter's own clock (may drift)")
    kind: Literal["telemetry", "balance"]
    credit_kwh: float | None
    total_kwh: float | None
    voltage_v: float | None
    power_w: int | None
    signal_csq: int | None = Field(description="GSM signal quality 0-31 (99: unknown)")
    signal_weak: bool
    message_id: str | None


class Readings(BaseModel):
    items: list[Reading]
    next_cursor: str | None


class MeterAlarm(BaseModel):
    id: int
    code: str
    meaning_id: str = Field(description="what the code means, Bahasa Indonesia")
    meaning_en: str = Field(description="what the code means, English")
    severity: str
    meter_time: datetime | None
    received_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    cleared_at: datetime | None
    message_id: str | None


class MeterAlarms(BaseModel):
    items: list[MeterAlarm]
    next_cursor: str | None


class Purchase(BaseModel):
    transaction_id: str
    created_at: datetime
    amount_idr: int
    kwh: float | None
    token_masked: str | None = Field(description="never the clear token")
    state: str
    state_at: datetime
    meter_outcome: str | None


class Purchases(BaseModel):
    items: list[Purchase]
    next_cursor: str | None


async def _known(ctx: Ctx, meter_number: str) -> None:
    await ctx.registry.get_meter(meter_number)  # NotFound -> 404


@router.get(
    "/meters/{meter_number}/readings",
    summary="The meter's readings, newest first",
    response_model=Readings,
)
async def get_readings(
    ctx: Ctx,
    principal: Helpdesk,
    meter_number: MeterNumber,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    await _known(ctx, meter_number)
    async with ctx.store.read() as conn:
        page = await meter_readings.readings(conn, meter_number, limit=limit, cursor=cursor)
    await audit(ctx, principal, "view.meter_readings", "meter", meter_number)
    return {"items": page.rows, "next_cursor": page.next_cursor}


@router.get(
    "/meters/{meter_number}/alarms",
    summary="The meter's alarms with what each means, newest first",
    response_model=MeterAlarms,
)
async def get_meter_alarms(
    ctx: Ctx,
    principal: Helpdesk,
    meter_number: MeterNumber,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    await _known(ctx, meter_number)
    async with ctx.store.read() as conn:
        page = await meter_readings.alarms(conn, meter_number, limit=limit, cursor=cursor)
    await audit(ctx, principal, "view.meter_alarms", "meter", meter_number)
    return {
        "items": [
            {
                **a,
                "meaning_id": alarm_meaning(a["code"], "id"),
                "meaning_en": alarm_meaning(a["code"], "en"),
            }
            for a in page.rows
        ],
        "next_cursor": page.next_cursor,
    }


@router.get(
    "/meters/{meter_number}/purchases",
    summary="The meter's purchases and tokens (masked), newest first",
    response_model=Purchases,
)
async def get_purchases(
    ctx: Ctx,
    principal: Helpdesk,
    meter_number: MeterNumber,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    await _known(ctx, meter_number)
    async with ctx.store.read() as conn:
        page = await meter_readings.purchases(conn, meter_number, limit=limit, cursor=cursor)
    await audit(ctx, principal, "view.meter_purchases", "meter", meter_number)
    return {"items": page.rows, "next_cursor": page.next_cursor}
