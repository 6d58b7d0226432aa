"""P2APST's refusals, set-wise: many purchases declined and told in one unit of work.

The purchase driver hands each refused 2210 (or a 2110 that found no meter) to a
`Coalescer` over `apply_declines`; what queues while one batch is written goes into the
next. Per batch: one locking read of the purchases' states (in id order), the decision in
memory (`decide`: a purchase already moved on, or named twice, is left alone), then one
conditional UPDATE for the DECLINED moves (each row keeps its own response code), one
multi-row INSERT of their state stamps and one of the PURCHASE_FAILED replies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.commands.replies import Reply, render
from operator_data.hub.context import HubContext
from operator_data.hub.formatting import rupiah, short_ref
from operator_data.hub.lifecycle import OPEN, PurchaseEvent, step
from operator_data.hub.outbound import PRIORITY_RECEIPT
from operator_data.store import Flow, TransactionState, schema
from operator_data.store.messages import Outgoing, enqueue_outbound_many
from operator_data.store.transactions import Transaction, lock_in_states
from operator_data.store.transitions import TRANSACTIONS, transition_many
from p2apst_adapter.dialect import ResponseCode

_STEP = step(PurchaseEvent.DECLINED)

# Short reasons for PURCHASE_FAILED (they must fit the one-SMS template).
_DECLINE_REASON: dict[str, str] = {
    ResponseCode.UNKNOWN_METER: "meter tidak dikenal",
    ResponseCode.UNKNOWN_CUSTOMER: "pelanggan tidak dikenal",
    ResponseCode.CUSTOMER_BLOCKED: "pelanggan diblokir",
    ResponseCode.CUSTOMER_SUSPENDED: "pelanggan diblokir",
    ResponseCode.BELOW_MINIMUM: "nominal terlalu kecil",
    ResponseCode.ABOVE_MAXIMUM: "nominal terlalu besar",
    ResponseCode.KWH_OVER_MAXIMUM: "total kWh melebihi batas",
    ResponseCode.NO_PAYMENT: "tidak ada pembayaran",
}


def reason(code: str) -> str:
    return _DECLINE_REASON.get(code, f"ditolak PLN (kode {code})")


@dataclass(frozen=True, slots=True)
class Decline:
    """P2APST refused `tx` with `code` (a 2210's bit 39, or the 2110's)."""

    tx: Transaction
    code: str


def decide(declines: Sequence[Decline], states: Mapping[str, TransactionState]) -> list[Decline]:
    """The declines that move their purchase, in order: the purchase is still open (in
    `states`, as read under lock) and not declined earlier in the batch. No I/O."""
    moving: dict[str, Decline] = {}
    for decline in declines:
        state = states.get(decline.tx.id)
        if state in _STEP.sources and decline.tx.id not in moving:
            moving[decline.tx.id] = decline
    return list(moving.values())


async def apply_declines(ctx: HubContext, declines: Sequence[Decline]) -> list[bool]:
    """Decline each purchase still open and queue its customer's PURCHASE_FAILED; one
    result per item: whether it moved its purchase (False: moved on meanwhile, or a twin
    earlier in the batch did)."""
    if not declines:
        return []
    async with ctx.unit() as (conn, _):
        states = await lock_in_states(conn, [d.tx.id for d in declines], OPEN)
        moving = decide(declines, states)
        now = ctx.now()
        moved = await _move(conn, moving, now)
        await enqueue_outbound_many(
            conn,
            [_reply(ctx, d) for d in moving if d.tx.id in moved and d.tx.phone_msisdn is not None],
            at=now,
        )
    first = {d.tx.id: d for d in moving if d.tx.id in moved}
    return [first.get(d.tx.id) is d for d in declines]


async def _move(conn: AsyncConnection, moving: Sequence[Decline], at: datetime) -> set[str]:
    if not moving:
        return set()
    t = schema.transactions
    # Each purchase keeps its own response code: one UPDATE, the code picked by id.
    codes = case({d.tx.id: d.code[:4] for d in moving}, value=t.c.id)
    return await transition_many(
        conn,
        TRANSACTIONS,
        [d.tx.id for d in moving],
        _STEP.target,
        at=at,
        only_from=sorted(_STEP.sources),
        extra_values={"response_code": codes},
    )


def _reply(ctx: HubContext, decline: Decline) -> Outgoing:
    tx = decline.tx
    assert tx.phone_msisdn is not None
    text = render(
        Reply.PURCHASE_FAILED, ctx.lang, amount=rupiah(tx.amount_idr), reason=reason(decline.code)
    )
    return Outgoing(
        flow=Flow.HUB_TO_CUSTOMER,
        idempotency_key=f"declined:{tx.id}",
        destination=tx.phone_msisdn,
        payload=text.encode("utf-8"),
        customer_id=tx.customer_id,
        meter_number=tx.meter_number,
        kind="purchase-failed",
        body=text,
        priority=PRIORITY_RECEIPT,
        correlation_id=short_ref(tx.id),
        transaction_id=tx.id,
    )
