"""Message log search: by MSISDN, meter, customer, transaction, state, flow, time range;
keyset-paginated (`cursor` from the previous page's `next_cursor`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from gateway.msisdn import MsisdnError, normalise
from operator_data.api import views
from operator_data.api.deps import Ctx, Helpdesk
from operator_data.api.queries import MAX_PAGE, MessageFilter
from operator_data.store.states import Direction, Flow, MessageState

router = APIRouter(prefix="/api/v1", tags=["messages"])


def normalised_msisdn(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalise(value, mobile_only=False)
    except MsisdnError as error:
        raise HTTPException(422, f"msisdn: {error}") from None


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise HTTPException(422, f"{name}: give a timezone offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise HTTPException(422, f"{name}: out of range") from None


@router.get("/messages", summary="Search the message log")
async def search_messages(
    ctx: Ctx,
    principal: Helpdesk,
    msisdn: Annotated[str | None, Query(max_length=32)] = None,
    meter_number: Annotated[str | None, Query(pattern=r"^[0-9]{11}$")] = None,
    customer_id: Annotated[str | None, Query(pattern=r"^[0-9]{12}$")] = None,
    transaction_id: Annotated[str | None, Query(pattern=r"^[0-9A-Z]{26}$")] = None,
    state: MessageState | None = None,
    flow: Flow | None = None,
    direction: Direction | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    reason: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    since, until = _utc("since", since), _utc("until", until)
    where = MessageFilter(
        msisdn=normalised_msisdn(msisdn),
        meter_number=meter_number,
        customer_id=customer_id,
        transaction_id=transaction_id,
        state=None if state is None else state.value,
        flow=flow,
        direction=direction,
        since=since,
        until=until,
    )
    page = await views.search(ctx, principal, where, limit=limit, cursor=cursor, reason=reason)
    return {"items": page.rows, "next_cursor": page.next_cursor}
