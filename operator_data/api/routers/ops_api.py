"""API of the message detail, purchase search, outbox (supervisor), token resend with its
outcome (supervisor) and gateway status: one router per resource, same read models and
audit as the pages (operator_data/api/routers/ops_pages.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from operator_data.api import ops_views
from operator_data.api.auth import Principal
from operator_data.api.deps import AppContext, Ctx, Helpdesk, Supervisor
from operator_data.api.message_detail import BadSearch, TransactionSearch
from operator_data.api.outbox_view import Refused

MessageId = Annotated[str, Path(pattern=r"^[0-9A-Z]{26}$")]
TransactionId = Annotated[str, Path(pattern=r"^[0-9A-Z]{26}$")]
OutboxId = Annotated[int, Path(ge=1, le=2**62)]

message_router = APIRouter(prefix="/api/v1", tags=["messages"])
search_router = APIRouter(prefix="/api/v1", tags=["transactions"])
outbox_router = APIRouter(prefix="/api/v1", tags=["outbox"])
resend_router = APIRouter(prefix="/api/v1", tags=["transactions"])
gateway_router = APIRouter(prefix="/api/v1", tags=["status"])


class MessageState(BaseModel):
    state: str
    at: datetime
    detail: str | None


class OutboxWait(BaseModel):
    id: int
    gateway_hint: str | None
    priority: int
    available_at: datetime
    claimed_by: str | None
    lease_until: datetime | None
    attempts: int
    created_at: datetime


class MessageDetail(BaseModel):
    id: str
    created_at: datetime
    direction: str
    flow: str
    peer_msisdn: str | None = Field(description="masked for the helpdesk role")
    meter_number: str | None
    customer_id: str | None
    gateway_id: str | None
    modem_id: str | None
    kind: str | None
    body: str | None = Field(description="as logged: PINs and tokens masked")
    raw_pdu_hex: str | None = Field(description="never given for customer SMS")
    pdu_masked: bool
    state: str
    state_at: datetime
    retries: int
    reject_reason: str | None
    transaction_id: str | None
    states: list[MessageState]
    outbox: OutboxWait | None


@message_router.get(
    "/messages/{message_id}",
    summary="One message with its delivery history",
    response_model=MessageDetail,
)
async def get_message(ctx: Ctx, principal: Helpdesk, message_id: MessageId) -> dict[str, Any]:
    return await ops_views.message(ctx, principal, message_id)


class FoundTransaction(BaseModel):
    id: str
    created_at: datetime
    meter_number: str
    customer_id: str
    phone_msisdn: str | None
    amount_idr: int
    token_masked: str | None
    pln_ref: str | None
    switcher_ref: str | None
    state: str
    state_at: datetime


class TransactionHits(BaseModel):
    items: list[FoundTransaction]


@search_router.get(
    "/transactions",
    summary="Find purchases by PLN/switcher reference or token suffix",
    response_model=TransactionHits,
)
async def find_transactions(
    ctx: Ctx,
    principal: Helpdesk,
    pln_ref: Annotated[str | None, Query(max_length=64)] = None,
    switcher_ref: Annotated[str | None, Query(max_length=64)] = None,
    token_suffix: Annotated[str | None, Query(max_length=8)] = None,
    meter_number: Annotated[str | None, Query(max_length=11)] = None,
    customer_id: Annotated[str | None, Query(max_length=12)] = None,
) -> dict[str, Any]:
    search = TransactionSearch(pln_ref, switcher_ref, token_suffix, meter_number, customer_id)
    try:
        items = await ops_views.find_transactions(ctx, principal, search)
    except BadSearch as error:
        raise HTTPException(422, str(error)) from None
    return {"items": items}


class OutboxRow(OutboxWait):
    message_id: str
    destination: str
    flow: str
    kind: str | None
    state: str
    meter_number: str | None
    transaction_id: str | None
    why: str = Field(description="sending | awaiting_result | retry_later | due")
    cancellable: bool


class OutboxList(BaseModel):
    items: list[OutboxRow]
    total: int


class Reason(BaseModel):
    reason: str = Field(min_length=3, max_length=200)


class OutboxDone(BaseModel):
    outbox_id: int
    message_id: str
    result: str


@outbox_router.get(
    "/outbox", summary="What waits in the outbox, and why", response_model=OutboxList
)
async def list_outbox(ctx: Ctx, principal: Supervisor) -> dict[str, Any]:
    return await ops_views.outbox(ctx, principal)


@outbox_router.post(
    "/outbox/{outbox_id}/retry",
    summary="Offer a waiting SMS to a modem now",
    response_model=OutboxDone,
)
async def retry_outbox(
    ctx: Ctx, principal: Supervisor, outbox_id: OutboxId, body: Reason
) -> dict[str, Any]:
    return await _outbox_action(ctx, principal, outbox_id, "retry", body.reason)


@outbox_router.post(
    "/outbox/{outbox_id}/cancel", summary="Cancel a customer notice", response_model=OutboxDone
)
async def cancel_outbox(
    ctx: Ctx, principal: Supervisor, outbox_id: OutboxId, body: Reason
) -> dict[str, Any]:
    return await _outbox_action(ctx, principal, outbox_id, "cancel", body.reason)


async def _outbox_action(
    ctx: AppContext, principal: Principal, outbox_id: int, action: str, reason: str
) -> dict[str, Any]:
    try:
        return await ops_views.outbox_action(ctx, principal, outbox_id, action, reason)
    except Refused as error:
        raise HTTPException(409, str(error)) from None


class ResendResult(BaseModel):
    transaction_id: str
    outcome: str = Field(description="resent | not_allowed | unavailable | refused")
    state: str
    detail: str


_RESEND_STATUS = {"resent": 200, "not_allowed": 409, "refused": 409, "unavailable": 503}


@resend_router.post(
    "/transactions/{transaction_id}/resend",
    summary="Resend the token, with the outcome (audited)",
    response_model=ResendResult,
    responses={409: {"description": "not allowed or refused"}, 503: {"description": "no hub"}},
)
async def resend(
    ctx: Ctx, principal: Supervisor, transaction_id: TransactionId, body: Reason
) -> Any:
    outcome = await ops_views.resend(ctx, principal, transaction_id, body.reason)
    return JSONResponse(outcome, status_code=_RESEND_STATUS[outcome["outcome"]])


class ModemRow(BaseModel):
    modem_id: str
    gateway_id: str
    known: bool
    operator: str | None = None
    signal_percent: int | None = None
    imei: str | None = None
    registered: bool = False
    last_seen: datetime | None = None
    detail: str | None = None
    sent: int
    received: int
    failed: int


class GatewayRow(BaseModel):
    gateway_id: str
    connected: bool
    last_seen: datetime | None
    queue: int
    modems: list[ModemRow]


class GatewayBoard(BaseModel):
    gateways: list[GatewayRow]
    unrouted: int
    other_queue: int
    outbox_pending: int
    window_hours: int
    at: datetime


@gateway_router.get(
    "/gateways",
    summary="Per modem: state, counters; queues agreeing with the outbox",
    response_model=GatewayBoard,
)
async def gateways(ctx: Ctx, principal: Helpdesk) -> dict[str, Any]:
    return await ops_views.gateways(ctx)


routers = (message_router, search_router, outbox_router, resend_router, gateway_router)
