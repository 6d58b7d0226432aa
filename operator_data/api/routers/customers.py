"""A customer (shown as much as the role needs; a reason is required and audited) and
PIN unlock (supervisor)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from operator_data.api import views
from operator_data.api.deps import Ctx, Helpdesk, Supervisor, audit
from operator_data.api.routers.messages import normalised_msisdn

router = APIRouter(prefix="/api/v1", tags=["customers"])


@router.get("/customers/{customer_id}", summary="Customer details and timeline")
async def get_customer(
    ctx: Ctx,
    principal: Helpdesk,
    customer_id: Annotated[str, Path(pattern=r"^[0-9]{12}$")],
    reason: Annotated[
        str, Query(min_length=3, max_length=200, description="Why the data is viewed (audited)")
    ],
) -> dict[str, Any]:
    return await views.customer(ctx, principal, customer_id, reason)


class ViewReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=3, max_length=200, description="Why the data is viewed (audited)"
    )


@router.post(
    "/customers/{customer_id}/view",
    summary="Customer details and timeline, the reason in the body",
    description=(
        "As GET /customers/{customer_id}, with the reason in the body, where it stays out "
        "of access logs and browser history (the reason is often about the customer)."
    ),
)
async def view_customer(
    ctx: Ctx,
    principal: Helpdesk,
    customer_id: Annotated[str, Path(pattern=r"^[0-9]{12}$")],
    body: ViewReason,
) -> dict[str, Any]:
    return await views.customer(ctx, principal, customer_id, body.reason)


@router.post("/phones/{msisdn}/unlock-pin", summary="Unlock a locked PIN (supervisor)")
async def unlock_pin(
    ctx: Ctx,
    principal: Supervisor,
    msisdn: Annotated[str, Path(max_length=32)],
) -> dict[str, Any]:
    number = normalised_msisdn(msisdn)
    assert number is not None
    outcome = await ctx.actions.unlock_pin(number, principal.name)
    await audit(ctx, principal, "action.unlock_pin", "phone", number)
    return {"done": outcome}
