"""A purchase with every stage, its timestamps and SLA status; token resend (supervisor)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from operator_data.api import views
from operator_data.api.deps import Ctx, Helpdesk, Supervisor, audit

router = APIRouter(prefix="/api/v1", tags=["transactions"])

TransactionId = Annotated[str, Path(pattern=r"^[0-9A-Z]{26}$")]


class Reason(BaseModel):
    reason: str = Field(min_length=3, max_length=200)


@router.get("/transactions/{transaction_id}", summary="Transaction stages and SLA")
async def get_transaction(
    ctx: Ctx,
    principal: Helpdesk,
    transaction_id: TransactionId,
    reason: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    return await views.transaction(ctx, principal, transaction_id, reason)


@router.post("/transactions/{transaction_id}/resend-token", summary="Resend the token SMS")
async def resend_token(
    ctx: Ctx, principal: Supervisor, transaction_id: TransactionId, body: Reason
) -> dict[str, Any]:
    await audit(
        ctx,
        principal,
        "action.resend_token",
        "transaction",
        transaction_id,
        {"reason": body.reason},
    )
    outcome = await ctx.actions.resend_token(transaction_id, principal.name, body.reason)
    return {"done": outcome}
