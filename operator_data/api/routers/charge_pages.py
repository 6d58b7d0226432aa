"""A customer's SMS charges page (a period, default this month) and its CSV download
(supervisor). A period that cannot be read is said so, with no rows shown."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from operator_data.api import customer_charges as cc
from operator_data.api.auth import Role
from operator_data.api.deps import Ctx
from operator_data.api.queries import BadCursor
from operator_data.api.routers.charges import charges_view, csv_response
from operator_data.api.routers.page_kit import render, texts
from operator_data.api.routers.pages import Viewer

router = APIRouter(include_in_schema=False)

CustomerId = Annotated[str, Path(pattern=r"^[0-9]{12}$")]
Day = Annotated[str, Query(max_length=32)]


@router.get("/customers/{customer_id}/charges")
async def charges_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    customer_id: CustomerId,
    from_: Annotated[str, Query(alias="from", max_length=32)] = "",
    until: Day = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    await ctx.registry.get_customer(customer_id)  # NotFound -> 404 page
    error: str | None = None
    data: dict[str, Any] | None = None
    try:
        period = cc.parse_period(from_ or None, until or None, ctx.clock())
        data = await charges_view(
            ctx, principal, customer_id, period, limit=100, cursor=cursor or None
        )
    except (cc.BadPeriod, BadCursor) as problem:
        error = str(problem)
    filters = (
        {"from": from_, "until": until}
        if error
        else {
            "from": data["first_day"] if data else "",
            "until": data["last_day"] if data else "",
        }
    )
    base = f"/customers/{customer_id}/charges"
    next_cursor = data["next_cursor"] if data else None
    return render(
        request,
        "charges.html",
        principal,
        {
            "customer_id": customer_id,
            "data": data,
            "error": error,
            "filters": filters,
            "csv_url": f"{base}.csv?" + urlencode(filters) if data else None,
            "next_url": f"{base}?" + urlencode({**filters, "cursor": next_cursor})
            if next_cursor
            else None,
            "first_url": f"{base}?" + urlencode(filters),
            "paged": bool(cursor),
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
    )


@router.get("/customers/{customer_id}/charges.csv")
async def charges_csv(
    ctx: Ctx,
    principal: Viewer,
    customer_id: CustomerId,
    from_: Annotated[str, Query(alias="from", max_length=32)] = "",
    until: Day = "",
) -> Response:
    if not principal.role.allows(Role.SUPERVISOR):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "role supervisor required")
    await ctx.registry.get_customer(customer_id)
    try:
        period = cc.parse_period(from_ or None, until or None, ctx.clock())
    except cc.BadPeriod as problem:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(problem)) from problem
    return await csv_response(ctx, principal, customer_id, period)


@router.get("/charges")
async def charges_lookup(
    request: Request,
    principal: Viewer,
    customer_id: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """The menu's entry: a customer ID, then their charges page."""
    compact = customer_id.strip().replace(" ", "").replace("-", "")
    if re.fullmatch(r"[0-9]{12}", compact):
        return RedirectResponse(
            f"/customers/{compact}/charges", status_code=status.HTTP_303_SEE_OTHER
        )
    t = texts(request)
    return render(
        request,
        "lookup.html",
        principal,
        {
            "title": t["charges"],
            "hint": t["lookup_customer"],
            "action": "/charges",
            "field": "customer_id",
            "value": customer_id[:32],
            "digits": 12,
            "error": t["lookup_bad_customer"] if customer_id else None,
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if customer_id else 200,
    )
