"""A meter and its timeline; SIM-swap approval (supervisor, four eyes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from operator_data.api import views
from operator_data.api.deps import Ctx, Helpdesk, Supervisor, audit

router = APIRouter(prefix="/api/v1", tags=["meters"])


@router.get("/meters/{meter_number}", summary="Meter details and timeline")
async def get_meter(
    ctx: Ctx,
    principal: Helpdesk,
    meter_number: Annotated[str, Path(pattern=r"^[0-9]{11}$")],
    reason: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    return await views.meter(ctx, principal, meter_number, reason)


@router.post("/sim-swaps/{swap_id}/approve", summary="Approve a SIM swap (supervisor)")
async def approve_sim_swap(
    ctx: Ctx,
    principal: Supervisor,
    swap_id: Annotated[int, Path(ge=1, le=2**62)],
) -> dict[str, Any]:
    outcome = await ctx.actions.approve_sim_swap(swap_id, principal.name)
    await audit(ctx, principal, "action.approve_sim_swap", "sim_swap", str(swap_id))
    return {"done": outcome}
