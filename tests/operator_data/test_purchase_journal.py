"""The hub's P2APST purchase journal (`HubPurchaseJournal`): recording a purchase before
its 2200 goes out moves the hub's transaction to SUBMITTED in the same unit of work, once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import event, func, select

from operator_data.hub.journal import HubPurchaseJournal
from operator_data.store import Store, TransactionState, schema
from operator_data.store.transactions import create_transaction, get_transaction
from operator_data.store.workflow_schema import hub_purchases
from p2apst_adapter.client.journal import JournalEntry
from p2apst_adapter.model import PurchaseRequest, PurchaseResult
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


def _result(reference: str, code: str) -> PurchaseResult:
    if code != "0000":
        return PurchaseResult(switcher_reference=reference, response_code=code)
    return PurchaseResult(
        switcher_reference=reference,
        response_code=code,
        token="12345678901234567890",
        kwh=Decimal("13.5"),
        pln_reference=f"PLN-{reference}",
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


async def _purchases(store: Store, count: int) -> list[str]:
    ids = []
    async with store.begin() as conn:
        for n in range(count):
            tx, _ = await create_transaction(
                conn,
                idempotency_key=f"sms:{n}",
                meter_number=METER,
                customer_id=CUSTOMER,
                amount_idr=20_000,
                phone_msisdn=PHONE,
                at=T0,
            )
            ids.append(tx.id)
    return ids


async def test_purchases_begun_together_are_recorded_together(store: Store) -> None:
    """Begun concurrently, purchases share one unit of work; an entry recorded before and a
    key repeated within the batch each get the entry as first recorded."""
    ctx = await _context(store)
    ids = await _purchases(store, 5)
    journal = HubPurchaseJournal(store, ctx.master, clock=lambda: T0 + timedelta(seconds=1))
    old = JournalEntry(_request(ids[0]), "000001", T0)
    assert await journal.begin(old) == old
    commits = 0

    def count(*_: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(store.engine.sync_engine, "commit", count)
    try:
        entries = [JournalEntry(_request(i), f"{n + 10:06d}", T0) for n, i in enumerate(ids)]
        twin = JournalEntry(_request(ids[1]), "000099", T0)
        stored = await asyncio.gather(*(journal.begin(e) for e in [*entries, twin]))
    finally:
        event.remove(store.engine.sync_engine, "commit", count)
    assert stored[0] == old  # recorded before: the first record wins
    assert stored[1:5] == entries[1:5]
    assert stored[5] == entries[1]  # the twin gets its key's first record
    assert commits <= 2  # the first begin alone, the rest together
    async with store.read() as conn:
        states = {
            str(r.id): (r.state, r.switcher_ref)
            for r in await conn.execute(
                select(
                    schema.transactions.c.id,
                    schema.transactions.c.state,
                    schema.transactions.c.switcher_ref,
                )
            )
        }
        stamps = await conn.scalar(select(func.count()).select_from(schema.transaction_states))
    assert states == {i: (TransactionState.SUBMITTED.value, i) for i in ids}
    assert stamps == 10  # requested and submitted, once each


async def test_answers_completed_together_keep_each_purchase_its_first(store: Store) -> None:
    ctx = await _context(store)
    ids = await _purchases(store, 3)
    journal = HubPurchaseJournal(store, ctx.master, clock=lambda: T0 + timedelta(seconds=1))
    for n, i in enumerate(ids):
        await journal.begin(JournalEntry(_request(i), f"{n:06d}", T0))
    paid = [_result(i, "0000") for i in ids]
    await asyncio.gather(
        *(journal.complete(i, r) for i, r in zip(ids, paid, strict=True)),
        journal.complete(ids[0], _result(ids[0], "0014")),  # a late second answer
    )
    for i, result in zip(ids, paid, strict=True):
        entry = await journal.get(i)
        assert entry is not None and entry.result == result
    assert await journal.pending() == []
    # Completing again changes nothing.
    await journal.complete(ids[1], _result(ids[1], "0014"))
    again = await journal.get(ids[1])
    assert again is not None and again.result == paid[1]


async def test_advising_marks_a_submitted_purchase_once(store: Store) -> None:
    ctx = await _context(store)
    submitted, requested = await _purchases(store, 2)
    journal = HubPurchaseJournal(store, ctx.master, clock=lambda: T0 + timedelta(seconds=1))
    await journal.begin(JournalEntry(_request(submitted), "000001", T0))
    for key in (submitted, submitted, requested):
        await journal.advising(key)
    async with store.read() as conn:
        states = {i: (await get_transaction(conn, i)).state for i in (submitted, requested)}
        stamps = await conn.scalar(
            select(func.count())
            .select_from(schema.transaction_states)
            .where(schema.transaction_states.c.transaction_id == submitted)
        )
    assert states == {
        submitted: TransactionState.ADVISING,
        requested: TransactionState.REQUESTED,  # never journalled: nothing to advise on
    }
    assert stamps == 3  # requested, submitted, advising (once)
