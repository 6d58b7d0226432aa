"""A meter and its timeline; SIM swaps: listed and requested by the helpdesk, approved
(four eyes: not by the requester) or rejected by a supervisor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from operator_data.api import sim_swaps, views
from operator_data.api.deps import Ctx, Helpdesk, Supervisor, audit
from operator_data.store.transitions import NotFound

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


SwapId = Annotated[int, Path(ge=1, le=2**62)]


class SwapRequest(BaseModel):
    new_msisdn: str = Field(min_length=8, max_length=20)
    reason: str | None = Field(default=None, max_length=500)


class SwapDecision(BaseModel):
    note: str | None = Field(default=None, max_length=500)


@router.get("/sim-swaps", summary="SIM swaps, requested ones first (helpdesk)")
async def list_sim_swaps(
    ctx: Ctx,
    principal: Helpdesk,
    state: Annotated[str | None, Query(max_length=32)] = None,
    meter: Annotated[str | None, Query(pattern=r"^[0-9]{11}$")] = None,
    limit: Annotated[int, Query(ge=1, le=sim_swaps.MAX_LIST)] = 50,
) -> dict[str, Any]:
    try:
        wanted = sim_swaps.parse_state(state)
    except sim_swaps.BadSwapFilter as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    async with ctx.store.read() as conn:
        items = await sim_swaps.list_swaps(
            conn, principal.role, state=wanted, meter_number=meter, limit=limit
        )
    return {"items": items}


@router.get("/sim-swaps/{swap_id}", summary="One SIM swap (helpdesk)")
async def get_sim_swap(ctx: Ctx, principal: Helpdesk, swap_id: SwapId) -> dict[str, Any]:
    async with ctx.store.read() as conn:
        swap = await sim_swaps.one_swap(conn, principal.role, swap_id)
    if swap is None:
        raise NotFound(f"SIM swap #{swap_id} does not exist")
    return swap


@router.post(
    "/meters/{meter_number}/sim-swaps",
    summary="Request a SIM swap (helpdesk; someone else approves)",
    status_code=status.HTTP_201_CREATED,
)
async def request_sim_swap(
    ctx: Ctx,
    principal: Helpdesk,
    meter_number: Annotated[str, Path(pattern=r"^[0-9]{11}$")],
    body: SwapRequest,
) -> dict[str, Any]:
    swap = await ctx.registry.request_sim_swap(
        meter_number, body.new_msisdn, requested_by=principal.name, reason=body.reason
    )
    await audit(
        ctx,
        principal,
        "action.request_sim_swap",
        "sim_swap",
        str(swap.swap_id),
        {"meter_number": meter_number},
    )
    return await get_sim_swap(ctx, principal, swap.swap_id)


@router.post("/sim-swaps/{swap_id}/reject", summary="Reject a SIM swap (supervisor)")
async def reject_sim_swap(
    ctx: Ctx,
    principal: Supervisor,
    swap_id: SwapId,
    body: SwapDecision | None = None,
) -> dict[str, Any]:
    note = None if body is None else body.note
    swap = await ctx.registry.reject_sim_swap(swap_id, rejected_by=principal.name, note=note)
    await audit(ctx, principal, "action.reject_sim_swap", "sim_swap", str(swap_id))
    return {"done": f"SIM swap #{swap.swap_id} of meter {swap.meter_number} rejected"}
