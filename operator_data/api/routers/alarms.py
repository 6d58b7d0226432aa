"""Alarm queue; acknowledgement by a supervisor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from operator_data.api import queries
from operator_data.api.deps import Ctx, Helpdesk, Supervisor, audit

router = APIRouter(prefix="/api/v1", tags=["alarms"])


@router.get("/alarms", summary="Alarm queue, newest first")
async def list_alarms(
    ctx: Ctx,
    principal: Helpdesk,
    include_acknowledged: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    async with ctx.store.read() as conn:
        rows = await queries.alarm_queue(
            conn, include_acknowledged=include_acknowledged, limit=limit
        )
    return {"items": rows}


@router.post("/alarms/{alarm_id}/ack", summary="Acknowledge an alarm (supervisor)")
async def acknowledge(
    ctx: Ctx, principal: Supervisor, alarm_id: Annotated[int, Path(ge=1, le=2**62)]
) -> dict[str, Any]:
    outcome = await ctx.actions.acknowledge_alarm(alarm_id, principal.name)
    await audit(ctx, principal, "action.acknowledge_alarm", "alarm", str(alarm_id))
    return {"done": outcome}
