"""Stuck work is seen (operator_data/hub/stuck.py): an accepted purchase still without
P2APST's answer, and a report P2APST never acknowledged, each become one helpdesk
incident naming the purchase — once, however often the sweep runs."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import insert, select

from operator_data.hub.context import HubContext
from operator_data.hub.stuck import PURCHASE_STUCK, REPORT_STUCK, flag_stuck
from operator_data.store import Store, TransactionState, schema
from operator_data.store.transactions import create_transaction, set_transaction_state
from operator_data.store.workflow_schema import hub_reports
from tests.operator_data.hub_support import CUSTOMER, METER, PHONE
from tests.operator_data.test_status_batch import T0, _context

T = TransactionState


def _strict(ctx: HubContext) -> HubContext:
    """Stuck after a minute (purchases) and two minutes (reports); the clock is T0 + 5 min."""
    hub = ctx.settings.hub.model_copy(
        update={"stuck_purchase_after_s": 60.0, "stuck_report_after_s": 120.0}
    )
    return dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"hub": hub}))


async def _purchase(store: Store, key: str, states: list[T], at_offset_s: float) -> str:
    at = T0 + timedelta(seconds=at_offset_s)
    async with store.begin() as conn:
        tx, _ = await create_transaction(
            conn,
            idempotency_key=key,
            meter_number=METER,
            customer_id=CUSTOMER,
            amount_idr=20_000,
            phone_msisdn=PHONE,
            at=at,
        )
        for state in states:
            await set_transaction_state(conn, tx.id, state, at=at)
    return tx.id


async def _report(store: Store, transaction_id: str, *, acknowledged: bool) -> None:
    async with store.begin() as conn:
        await conn.execute(
            insert(hub_reports).values(
                report_id=f"R{transaction_id}",
                transaction_id=transaction_id,
                report_sealed=b"sealed",
                master_id="m",
                acknowledged=acknowledged,
                created_at=T0,
            )
        )


async def _incidents(store: Store) -> list[tuple[str, str]]:
    items = schema.helpdesk_items
    async with store.read() as conn:
        rows = await conn.execute(select(items.c.transaction_id, items.c.category))
        return sorted((str(t), str(c)) for t, c in rows)


async def test_stuck_purchases_and_reports_become_one_incident_each(store: Store) -> None:
    ctx = _strict(await _context(store))
    stuck = await _purchase(store, "sms:stuck", [T.SUBMITTED], 0)
    requested = await _purchase(store, "sms:requested", [], 0)
    await _purchase(store, "sms:fresh", [T.SUBMITTED], 290)  # 10 s old: not yet
    await _purchase(store, "sms:paid", [T.SUBMITTED, T.TOKEN_ISSUED], 0)  # answered
    applied = await _purchase(
        store, "sms:applied", [T.SUBMITTED, T.TOKEN_ISSUED, T.TOKEN_SENT, T.APPLIED], 0
    )
    await _report(store, applied, acknowledged=False)
    done = await _purchase(
        store, "sms:done", [T.SUBMITTED, T.TOKEN_ISSUED, T.TOKEN_SENT, T.APPLIED, T.REPORTED], 0
    )
    await _report(store, done, acknowledged=True)

    assert await flag_stuck(ctx) == 3
    assert await _incidents(store) == sorted(
        [(stuck, PURCHASE_STUCK), (requested, PURCHASE_STUCK), (applied, REPORT_STUCK)]
    )
    # The next sweeps open nothing more for the same purchases.
    assert await flag_stuck(ctx) == 0
    assert len(await _incidents(store)) == 3


async def test_nothing_is_flagged_within_the_limits(store: Store) -> None:
    ctx = await _context(store)  # shipped limits: 15 min and an hour; the clock: 5 min
    await _purchase(store, "sms:waiting", [T.SUBMITTED], 0)
    assert await flag_stuck(ctx) == 0
    assert await _incidents(store) == []
