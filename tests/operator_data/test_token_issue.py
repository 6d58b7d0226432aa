"""P2APST's paid answers issued set-wise (operator_data/hub/token_issue.py).

Many paid purchases — several for one meter, one for a meter without a SIM, one already
settled by another driver, one paid twice — are issued in one unit of work exactly as
issuing them one at a time does: each open purchase TOKEN_ISSUED with its token sealed,
one delivery and one token frame each under its own frame counter, the meter without a SIM
escalated to the helpdesk; and the statements do not grow with the batch.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from firmware_protocol.frames import TokenDelivery, open_frame
from operator_data.hub.context import HubContext
from operator_data.hub.meter_link import frame_key_id
from operator_data.hub.token_issue import Paid, issue_tokens
from operator_data.registry import MeterIn
from operator_data.store import MeterState, Store, TransactionState, schema
from operator_data.store.transactions import (
    Transaction,
    create_transaction,
    get_transaction,
    set_transaction_state,
)
from operator_data.store.workflow_schema import hub_deliveries
from p2apst_adapter.model import PurchaseResult
from tests.operator_data.hub_support import CUSTOMER, METER, PHONE, make_token
from tests.operator_data.test_status_batch import T0, _context, _counting, second_store

T = TransactionState
NO_SIM = "14000000077"


async def _setup(ctx: HubContext) -> None:
    await ctx.registry.create_meter(
        MeterIn(NO_SIM, CUSTOMER, "123456", "01", 1, 2, 2014),
        comms_key=secrets.token_bytes(16),
        comms_key_id="k1",
        state=MeterState.ACTIVE,
    )


async def _submitted(ctx: HubContext, count: int, tag: str = "p") -> list[Transaction]:
    made = []
    async with ctx.store.begin() as conn:
        for n in range(count):
            tx, _ = await create_transaction(
                conn,
                idempotency_key=f"{tag}:{n}",
                meter_number=NO_SIM if n == 3 else METER,
                customer_id=CUSTOMER,
                amount_idr=20_000,
                phone_msisdn=PHONE,
                at=T0,
            )
            await set_transaction_state(conn, tx.id, T.SUBMITTED, at=T0)
            if n == 5:  # another driver settled it meanwhile
                await set_transaction_state(conn, tx.id, T.DECLINED, at=T0)
            made.append(await get_transaction(conn, tx.id))
    return made


def _paid(txs: Sequence[Transaction]) -> list[Paid]:
    paid = [
        Paid(
            tx,
            PurchaseResult(
                switcher_reference=tx.id,
                response_code="0000",
                token=make_token(rnd=n % 16),
                kwh=Decimal("15.2"),
                pln_reference=f"PLN{n:05d}",
            ),
        )
        for n, tx in enumerate(txs)
    ]
    return paid + paid[:1]  # the first paid twice (a repeated 2210)


async def _snapshot(store: Store) -> dict[str, Any]:
    t, d, m = schema.transactions, hub_deliveries, schema.messages
    async with store.read() as conn:
        return {
            "transactions": sorted(
                tuple(r)
                for r in await conn.execute(
                    select(t.c.idempotency_key, t.c.state, t.c.pln_ref, t.c.kwh, t.c.token_masked)
                )
            ),
            "deliveries": sorted(
                tuple(r)
                for r in await conn.execute(
                    select(
                        t.c.idempotency_key, d.c.attempts, d.c.next_check_at, d.c.escalated
                    ).join(d, d.c.transaction_id == t.c.id)
                )
            ),
            "frames": int(
                await conn.scalar(
                    select(func.count()).select_from(m).where(m.c.kind == "TOKEN_DELIVERY")
                )
                or 0
            ),
            "texts": sorted(
                str(k)
                for k in await conn.scalars(select(m.c.kind).where(m.c.flow == "hub_to_customer"))
            ),
            "counter": int(
                await conn.scalar(
                    select(schema.meters.c.tx_counter).where(schema.meters.c.meter_number == METER)
                )
                or 0
            ),
            "incidents": int(
                await conn.scalar(select(func.count()).select_from(schema.helpdesk_items)) or 0
            ),
        }


async def test_a_batch_issues_as_one_at_a_time_does(
    store: Store, tmp_path_factory: Any, backend: str
) -> None:
    ctx = await _context(store)
    await _setup(ctx)
    moved = await issue_tokens(ctx, _paid(await _submitted(ctx, 8)))
    assert len(moved) == 7  # the declined one is left alone, the twice-paid one once
    batched = await _snapshot(store)

    async with second_store(store, backend, tmp_path_factory) as other:
        ctx2 = await _context(other)
        await _setup(ctx2)
        for one in _paid(await _submitted(ctx2, 8)):
            await issue_tokens(ctx2, [one])
        alone = await _snapshot(other)
    assert batched == alone
    states = [state for _, state, *_ in batched["transactions"]]
    assert states.count(T.TOKEN_ISSUED.value) == 7 and T.DECLINED.value in states
    assert batched["frames"] == 6  # the meter without a SIM gets none ...
    assert batched["incidents"] == 1 and batched["texts"] == ["token-rejected"]  # ... but this
    assert batched["counter"] == 6  # six frames, six counters


async def test_frames_for_one_meter_get_counters_of_their_own(store: Store) -> None:
    ctx = await _context(store)
    await _setup(ctx)
    txs = await _submitted(ctx, 3)
    await issue_tokens(ctx, _paid(txs))
    key = await ctx.registry.comms_key(METER)
    m = schema.messages
    async with store.read() as conn:
        payloads = [
            bytes(p)
            for p in await conn.scalars(
                select(schema.outbox.c.payload)
                .join(m, m.c.id == schema.outbox.c.message_id)
                .where(m.c.kind == "TOKEN_DELIVERY")
            )
        ]
        references = set(await conn.scalars(select(hub_deliveries.c.id)))
    keys = {frame_key_id(key.key_id): key.key}
    opened = [
        open_frame(p, keys=keys, meter_number=METER, direction=None, replay=None) for p in payloads
    ]
    assert sorted(f.header.counter for f in opened) == [0, 1, 2]
    assert all(isinstance(f.message, TokenDelivery) for f in opened)
    assert {f.message.reference for f in opened if isinstance(f.message, TokenDelivery)} <= (
        references
    )


async def test_a_batch_costs_the_same_statements_for_2_purchases_as_for_40(
    store: Store,
) -> None:
    ctx = await _context(store)
    await _setup(ctx)
    counts = []
    for tag, count in (("few", 2), ("many", 40)):
        txs = [
            tx
            for tx in await _submitted(ctx, count + 6, tag)
            if tx.state is T.SUBMITTED and tx.meter_number == METER
        ][:count]
        paid = _paid(txs)[:-1]
        with _counting(store) as seen:
            await issue_tokens(ctx, paid)
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    assert counts[1] < 40
