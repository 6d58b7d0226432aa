"""Modem-pool / gateway status and AP2T batch history (both from hub providers)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from operator_data.api import views
from operator_data.api.deps import Ctx, Helpdesk

router = APIRouter(prefix="/api/v1", tags=["status"])


@router.get("/status", summary="Gateways, modems and outbox depth")
async def get_status(ctx: Ctx, principal: Helpdesk) -> dict[str, Any]:
    return await views.gateway_status(ctx)


@router.get("/ap2t/batches", summary="AP2T daily batch history")
async def ap2t_batches(
    ctx: Ctx, principal: Helpdesk, limit: Annotated[int, Query(ge=1, le=400)] = 30
) -> dict[str, Any]:
    return {"batches": [asdict(b) for b in await ctx.ap2t.batches(limit)]}
