"""The hub's P2APST purchase journal (`HubPurchaseJournal`): recording a purchase before
its 2200 goes out moves the hub's transaction to SUBMITTED in the same unit of work, once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from operator_data.hub.journal import HubPurchaseJournal
from operator_data.store import Store, TransactionState, schema
from operator_data.store.transactions import create_transaction, get_transaction
from operator_data.store.workflow_schema import hub_purchases
from p2apst_adapter.client.journal import JournalEntry
from p2apst_adapter.model import PurchaseRequest
from tests.operator_data.hub_support import CUSTOMER, METER, PHONE
from tests.operator_data.test_status_batch import T0, _context


def _request(reference: str) -> PurchaseRequest:
    return PurchaseRequest(
        meter_number=METER,
        customer_id=CUSTOMER,
        customer_name="Budi Santoso",
        tariff="R1",
        power_va=1300,
        amount=Decimal(20_000),
        switcher_reference=reference,
    )


async def test_recording_a_purchase_submits_its_transaction_once(store: Store) -> None:
    ctx = await _context(store)
    async with store.begin() as conn:
        tx, _ = await create_transaction(
            conn,
            idempotency_key="sms:1",
            meter_number=METER,
            customer_id=CUSTOMER,
            amount_idr=20_000,
            phone_msisdn=PHONE,
            at=T0,
        )
    journal = HubPurchaseJournal(store, ctx.master, clock=lambda: T0 + timedelta(seconds=1))
    first = JournalEntry(_request(tx.id), "000001", T0)
    assert await journal.begin(first) == first
    async with store.read() as conn:
        moved = await get_transaction(conn, tx.id)
        stamps = await conn.scalar(
            select(func.count())
            .select_from(schema.transaction_states)
            .where(schema.transaction_states.c.transaction_id == tx.id)
        )
    assert moved.state is TransactionState.SUBMITTED and moved.switcher_ref == tx.id
    assert stamps == 2  # requested, submitted
    # Another process (or a retry) recording the same purchase gets the first record back
    # and moves nothing.
    again = await journal.begin(JournalEntry(_request(tx.id), "000002", T0))
    assert again.stan == "000001"
    async with store.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(hub_purchases)) == 1
        assert (
            await conn.scalar(
                select(func.count())
                .select_from(schema.transaction_states)
                .where(schema.transaction_states.c.transaction_id == tx.id)
            )
            == 2
        )
