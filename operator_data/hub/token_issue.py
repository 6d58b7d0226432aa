"""P2APST's paid answers, set-wise: many purchases' tokens issued and sent in one unit.

The purchase driver hands each paid 2210 to a `Coalescer` over `issue_tokens` and waits;
whatever has queued meanwhile is issued together, per batch: the meters' comms keys and SIMs read
before the write transaction (one read each, for all), then in one unit of work the meters
locked (in order: meter first, then purchase) and their frame counters reserved (one
locking read, one UPDATE), the transactions read and locked (one statement), and one
statement each for their TOKEN_ISSUED moves (the token sealed), their state stamps, the
deliveries, and the TOKEN_DELIVERY frames queued. A purchase whose meter has no key or no
SIM gets its delivery escalated (a helpdesk item and an SMS: one statement each, rare).
A batch that fails is issued one purchase at a time; one that still fails fails its own
caller (the sweep drives that purchase again later).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import TokenDelivery
from operator_data.hub.context import HubContext
from operator_data.hub.delivery import DeliveryTarget, escalate, targets
from operator_data.hub.lifecycle import PurchaseEvent, step
from operator_data.hub.meter_link import seal_frame
from operator_data.hub.outbound import PRIORITY_TOKEN
from operator_data.store import Flow, TransactionState, schema
from operator_data.store.bulk import insert_many, insert_returning
from operator_data.store.locks import lock_rows
from operator_data.store.messages import Outgoing, enqueue_outbound_many
from operator_data.store.transactions import Transaction, lock_in_states, sealed_token
from operator_data.store.workflow_schema import hub_deliveries
from p2apst_adapter.model import PurchaseResult

log = logging.getLogger("operator_data.hub.purchases")
T = TransactionState
_STEP = step(PurchaseEvent.PAID)


@dataclass(frozen=True, slots=True)
class Paid:
    tx: Transaction
    result: PurchaseResult


async def issue_tokens(ctx: HubContext, paid: Sequence[Paid]) -> list[str]:
    """Move every still-open purchase of `paid` to TOKEN_ISSUED with its token sealed and
    start its delivery, set-wise; returns the transactions moved (a purchase another
    driver settled meanwhile is left as it is: the move is conditional)."""
    unique = list({p.tx.id: p for p in paid}.values())
    where_to = await targets(ctx, sorted({p.tx.meter_number for p in unique}))
    async with ctx.unit() as (conn, _):
        meters = sorted({p.tx.meter_number for p in unique})
        m = schema.meters
        # Meter first, then the purchase: the order every unit takes them in.
        await lock_rows(
            conn,
            select(m.c.meter_number).where(m.c.meter_number.in_(meters)).order_by(m.c.meter_number),
        )
        open_now = await lock_in_states(conn, [p.tx.id for p in unique], _STEP.sources)
        moving = [p for p in unique if p.tx.id in open_now]
        if not moving:
            return []
        now = ctx.now()
        await _issue(ctx, conn, moving, open_now, now)
        sendable = [p for p in moving if isinstance(where_to[p.tx.meter_number], DeliveryTarget)]
        counts: dict[str, int] = {}
        for p in sendable:
            counts[p.tx.meter_number] = counts.get(p.tx.meter_number, 0) + 1
        first = await ctx.registry.reserve_tx_counters(conn, counts)
        counters: dict[str, int] = {}
        for p in sendable:
            counters[p.tx.id] = first[p.tx.meter_number]
            first[p.tx.meter_number] += 1
        check_at = now + timedelta(seconds=ctx.settings.sla.meter_answer_s)
        written = await insert_returning(
            conn,
            hub_deliveries,
            [
                {
                    "transaction_id": p.tx.id,
                    "meter_number": p.tx.meter_number,
                    "attempts": 1 if p.tx.id in counters else 0,
                    "next_check_at": check_at if p.tx.id in counters else now,
                    "escalated": False,
                    "created_at": now,
                    "last_frame_message_id": counters.get(p.tx.id),
                }
                for p in moving
            ],
            returning=[hub_deliveries.c.id, hub_deliveries.c.transaction_id],
        )
        delivery = {str(tx_id): int(delivery_id) for delivery_id, tx_id in written}
        frames: list[Outgoing] = []
        for p in sendable:
            target = where_to[p.tx.meter_number]
            assert isinstance(target, DeliveryTarget) and p.result.token is not None
            counter = counters[p.tx.id]
            frame = seal_frame(
                target.key,
                TokenDelivery(reference=delivery[p.tx.id], token=p.result.token),
                counter,
            )
            frames.append(
                Outgoing(
                    flow=Flow.HUB_TO_METER,
                    idempotency_key=f"token:{p.tx.id}:1",
                    destination=target.to,
                    payload=frame,
                    meter_number=p.tx.meter_number,
                    customer_id=p.tx.customer_id,
                    kind="TOKEN_DELIVERY",
                    priority=PRIORITY_TOKEN,
                    correlation_id=f"frame:{p.tx.meter_number}:{counter}",
                    transaction_id=p.tx.id,
                )
            )
        await enqueue_outbound_many(conn, frames, at=now)
        for p in moving:
            target = where_to[p.tx.meter_number]
            if isinstance(target, str):
                await escalate(ctx, conn, delivery[p.tx.id], p.tx, "meter belum siap", target)
    for p in sendable:
        log.info("token of %s to meter %s, attempt 1", p.tx.id, p.tx.meter_number)
    return [p.tx.id for p in moving]


async def _issue(
    ctx: HubContext,
    conn: AsyncConnection,
    moving: Sequence[Paid],
    states: dict[str, T],
    now: datetime,
) -> None:
    t = schema.transactions
    rows = []
    for p in moving:
        assert p.result.token is not None
        sealed = sealed_token(p.tx.id, p.result.token, ctx.master)
        rows.append(
            {
                "b_id": p.tx.id,
                "b_from": states[p.tx.id].value,
                "b_at": now,
                "b_sealed": sealed["token_sealed"],
                "b_master": sealed["token_master_id"],
                "b_masked": sealed["token_masked"],
                "b_pln": p.result.pln_reference or None,
                "b_code": p.result.response_code,
                "b_kwh": None if p.result.kwh is None else str(p.result.kwh),
            }
        )
    await conn.execute(
        update(t)
        .where(t.c.id == bindparam("b_id"), t.c.state == bindparam("b_from"))
        .values(
            state=_STEP.target.value,
            state_at=bindparam("b_at"),
            token_sealed=bindparam("b_sealed"),
            token_master_id=bindparam("b_master"),
            token_masked=bindparam("b_masked"),
            pln_ref=bindparam("b_pln"),
            response_code=bindparam("b_code"),
            kwh=bindparam("b_kwh"),
        ),
        rows,
    )
    await insert_many(
        conn,
        schema.transaction_states,
        [
            {"transaction_id": p.tx.id, "state": _STEP.target.value, "at": now, "detail": None}
            for p in moving
        ],
    )
