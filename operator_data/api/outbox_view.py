"""The outbox as a supervisor sees it: what waits, why and since when; retry and cancel.

Why a row waits follows from its claim/lease columns (store/outbox.py):
- `sending`: a worker holds it under a live lease (claimed_by, lease_until in the future);
- `awaiting_result`: handed to a gateway, kept until a send result settles it
  (unclaimed, available_at in the future, gateway_hint set);
- `retry_later`: given back after an error, to be tried at available_at;
- `due`: claimable now, waiting for a free modem.

Cancel is only for customer notices (hub_to_customer, except receipts). A token frame is
the purchase itself: the delivery sweep (hub/delivery.py) resends it and escalates to the
helpdesk by its own clock, and a receipt is the customer's only copy of the token, so
neither may be dropped here; a retry is offered instead. A cancelled notice is not
deleted from the log: its message goes to `failed` with the reason, so the phone's log
and the charges (never charged: not carried) stay true.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store import IllegalTransition, NotFound, schema
from operator_data.store.messages import set_message_state
from operator_data.store.states import Flow, MessageState

o = schema.outbox
msg = schema.messages

OUTBOX_LIMIT = 200
#: Kinds of hub_to_customer SMS that must not be cancelled: the receipt carries the token.
UNCANCELLABLE_KINDS = frozenset({"receipt"})


class Refused(ValueError):
    """The action is not allowed on this row; the text says why."""


def why(row: dict[str, Any], now: datetime) -> str:
    if row["claimed_by"] is not None and row["lease_until"] is not None:
        if row["lease_until"] > now:
            return "sending"
        return "due"  # the lease ran out: any worker may claim it again
    if row["available_at"] > now:
        return "awaiting_result" if row["gateway_hint"] else "retry_later"
    return "due"


def cancellable(row: dict[str, Any]) -> bool:
    return row["flow"] == Flow.HUB_TO_CUSTOMER.value and row["kind"] not in UNCANCELLABLE_KINDS


async def outbox_rows(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """The rows in claim order (priority, then age), with their message's facts."""
    result = await conn.execute(
        select(
            o.c.id,
            o.c.message_id,
            o.c.destination,
            o.c.gateway_hint,
            o.c.priority,
            o.c.available_at,
            o.c.claimed_by,
            o.c.lease_until,
            o.c.attempts,
            o.c.created_at,
            msg.c.flow,
            msg.c.kind,
            msg.c.state,
            msg.c.meter_number,
            msg.c.transaction_id,
            msg.c.retries,
        )
        .join(msg, msg.c.id == o.c.message_id)
        .order_by(o.c.priority, o.c.id)
        .limit(OUTBOX_LIMIT)
    )
    rows = []
    for r in result:
        row = dict(r._mapping)
        row["why"] = why(row, now)
        row["cancellable"] = cancellable(row)
        rows.append(row)
    return rows


async def queue_by_gateway(conn: AsyncConnection) -> dict[str | None, int]:
    """Outbox rows per gateway they are routed to (None: not routed yet)."""
    rows = await conn.execute(select(o.c.gateway_hint, func.count()).group_by(o.c.gateway_hint))
    return {hint: int(n) for hint, n in rows}


@dataclass(frozen=True, slots=True)
class Done:
    outbox_id: int
    message_id: str
    result: str  # retried | cancelled


async def _row(conn: AsyncConnection, outbox_id: int) -> dict[str, Any]:
    found = (
        await conn.execute(
            select(o.c.id, o.c.message_id, o.c.claimed_by, o.c.lease_until, msg.c.flow, msg.c.kind)
            .join(msg, msg.c.id == o.c.message_id)
            .where(o.c.id == outbox_id)
        )
    ).first()
    if found is None:
        raise NotFound(f"outbox row {outbox_id} does not exist (sent or cancelled meanwhile)")
    return dict(found._mapping)


async def retry(conn: AsyncConnection, outbox_id: int, now: datetime) -> Done:
    """Make a waiting row claimable now. A row a worker is sending is left alone (its
    lease says someone is on it); the conditional UPDATE is the check."""
    row = await _row(conn, outbox_id)
    result = await conn.execute(
        update(o)
        .where(o.c.id == outbox_id, or_(o.c.lease_until.is_(None), o.c.lease_until <= now))
        .values(available_at=now, claimed_by=None, lease_until=None)
    )
    if result.rowcount != 1:
        raise Refused(f"outbox row {outbox_id} is being sent right now; try again later")
    return Done(outbox_id, row["message_id"], "retried")


async def cancel(
    conn: AsyncConnection, outbox_id: int, now: datetime, *, actor: str, reason: str
) -> Done:
    row = await _row(conn, outbox_id)
    if not cancellable(row):
        raise Refused(
            f"outbox row {outbox_id} is a {row['kind'] or row['flow']}: only customer notices "
            "can be cancelled (token frames and receipts are the purchase; retry instead)"
        )
    if row["lease_until"] is not None and row["lease_until"] > now:
        raise Refused(f"outbox row {outbox_id} is being sent right now; try again later")
    deleted = await conn.execute(
        delete(o).where(o.c.id == outbox_id, or_(o.c.lease_until.is_(None), o.c.lease_until <= now))
    )
    if deleted.rowcount != 1:
        raise Refused(f"outbox row {outbox_id} is being sent right now; try again later")
    try:
        await set_message_state(
            conn,
            row["message_id"],
            MessageState.FAILED,
            at=now,
            detail=f"cancelled by {actor}",
            reject_reason=f"cancelled by {actor}: {reason}",
        )
    except IllegalTransition as error:
        raise Refused(f"message {row['message_id']} cannot be cancelled: {error}") from None
    return Done(outbox_id, row["message_id"], "cancelled")
