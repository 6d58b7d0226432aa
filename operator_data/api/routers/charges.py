"""A customer's SMS charges over the API: totals and charges for a period (helpdesk), the
period as CSV (supervisor: a file leaves the system)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from operator_data.api import customer_charges as cc
from operator_data.api.auth import Principal
from operator_data.api.deps import AppContext, Ctx, Helpdesk, Supervisor, audit

router = APIRouter(prefix="/api/v1", tags=["charges"])

CustomerId = Annotated[str, Path(pattern=r"^[0-9]{12}$")]
Day = Annotated[str | None, Query(max_length=10, description="WIB date YYYY-MM-DD")]


class ChargeGroup(BaseModel):
    flow: str
    purpose: str
    price_version: str
    sms_count: int
    amount_idr: int


class Charge(BaseModel):
    charged_at: datetime
    message_id: str
    flow: str
    purpose: str
    price_version: str
    amount_idr: int


class Charges(BaseModel):
    customer_id: str
    first_day: str
    last_day: str
    sms_count: int
    amount_idr: int
    groups: list[ChargeGroup]
    items: list[Charge]
    next_cursor: str | None


async def period_of(
    ctx: AppContext, customer_id: str, first: str | None, last: str | None
) -> cc.Period:
    """The period asked for, of a customer that exists (NotFound -> 404)."""
    try:
        period = cc.parse_period(first, last, ctx.clock())
    except cc.BadPeriod as problem:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(problem)) from problem
    await ctx.registry.get_customer(customer_id)
    return period


async def charges_view(
    ctx: AppContext,
    principal: Principal,
    customer_id: str,
    period: cc.Period,
    *,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    async with ctx.store.read() as conn:
        summary = await cc.totals(conn, customer_id, period)
        rows, next_cursor = await cc.charges(conn, customer_id, period, limit=limit, cursor=cursor)
    await audit(
        ctx,
        principal,
        "view.charges",
        "customer",
        customer_id,
        {"from": period.first.isoformat(), "until": period.last.isoformat()},
    )
    return {
        "customer_id": customer_id,
        "first_day": period.first.isoformat(),
        "last_day": period.last.isoformat(),
        **summary,
        "items": rows,
        "next_cursor": next_cursor,
    }


async def csv_response(
    ctx: AppContext, principal: Principal, customer_id: str, period: cc.Period
) -> StreamingResponse:
    await audit(
        ctx,
        principal,
        "export.charges",
        "customer",
        customer_id,
        {"from": period.first.isoformat(), "until": period.last.isoformat()},
    )

    async def body() -> Any:
        async with ctx.store.read() as conn:
            async for line in cc.csv_lines(conn, customer_id, period):
                yield line

    name = cc.csv_filename(customer_id, period)
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/customers/{customer_id}/charges",
    summary="The customer's SMS charges for a period (default: this month)",
    response_model=Charges,
)
async def get_charges(
    ctx: Ctx,
    principal: Helpdesk,
    customer_id: CustomerId,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: Day = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    period = await period_of(ctx, customer_id, from_, until)
    return await charges_view(ctx, principal, customer_id, period, limit=limit, cursor=cursor)


@router.get(
    "/customers/{customer_id}/charges.csv",
    summary="The customer's SMS charges for a period as CSV (supervisor)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_charges(
    ctx: Ctx,
    principal: Supervisor,
    customer_id: CustomerId,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: Day = None,
) -> StreamingResponse:
    period = await period_of(ctx, customer_id, from_, until)
    return await csv_response(ctx, principal, customer_id, period)
