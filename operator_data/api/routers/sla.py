"""SLA dashboard: today, this month (WIB calendar), breaches, daily series."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from operator_data.api import views
from operator_data.api.deps import Ctx, Helpdesk

router = APIRouter(prefix="/api/v1", tags=["sla"])


@router.get("/sla", summary="SLA dashboard")
async def get_sla(ctx: Ctx, principal: Helpdesk) -> dict[str, Any]:
    return await views.sla_dashboard(ctx)
