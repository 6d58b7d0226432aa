"""P2APST's refusals applied set-wise (operator_data/hub/declines.py).

A batch of refusals — several codes, one purchase refused twice, one already paid by
another driver, one without a phone, purchases at REQUESTED, SUBMITTED and ADVISING —
leaves the store exactly as applying them one at a time does: each open purchase DECLINED
with its own response code and one PURCHASE_FAILED each; and the statements do not grow
with the batch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from operator_data.hub.context import HubContext
from operator_data.hub.declines import Decline, apply_declines, decide
from operator_data.store import Store, TransactionState, schema
from operator_data.store.transactions import (
    Transaction,
    create_transaction,
    get_transaction,
    set_transaction_state,
)
from tests.operator_data.hub_support import CUSTOMER, METER, PHONE
from tests.operator_data.test_status_batch import T0, _context, _counting, second_store

T = TransactionState
CODES = ("0014", "0015", "0017", "0077")


async def _open(ctx: HubContext, count: int, tag: str = "d") -> list[Transaction]:
    """`count` purchases: every fourth REQUESTED, ADVISING, SUBMITTED or already paid; the
    sixth without a phone."""
    made = []
    async with ctx.store.begin() as conn:
        for n in range(count):
            tx, _ = await create_transaction(
                conn,
                idempotency_key=f"{tag}:{n}",
                meter_number=METER,
                customer_id=CUSTOMER,
                amount_idr=20_000 + 1_000 * n,
                phone_msisdn=None if n == 5 else PHONE,
                at=T0,
            )
            if n % 4 != 0:
                await set_transaction_state(conn, tx.id, T.SUBMITTED, at=T0)
            if n % 4 == 1:
                await set_transaction_state(conn, tx.id, T.ADVISING, at=T0)
            if n % 4 == 3:  # another driver had it paid meanwhile
                await set_transaction_state(conn, tx.id, T.TOKEN_ISSUED, at=T0)
            made.append(await get_transaction(conn, tx.id))
    return made


def _declines(txs: list[Transaction]) -> list[Decline]:
    declines = [Decline(tx, CODES[n % len(CODES)]) for n, tx in enumerate(txs)]
    return [*declines, Decline(txs[0], "0099")]  # the first refused twice: its first counts


async def _snapshot(store: Store) -> dict[str, Any]:
    t, m = schema.transactions, schema.messages
    async with store.read() as conn:
        return {
            "transactions": sorted(
                tuple(r)
                for r in await conn.execute(
                    select(t.c.idempotency_key, t.c.state, t.c.response_code)
                )
            ),
            "stamps": sorted(
                tuple(r)
                for r in await conn.execute(
                    select(t.c.idempotency_key, schema.transaction_states.c.state).join(
                        schema.transaction_states,
                        schema.transaction_states.c.transaction_id == t.c.id,
                    )
                )
            ),
            "replies": sorted(
                (str(r.peer_msisdn), str(r.body), str(r.kind), r.customer_id is not None)
                for r in await conn.execute(
                    select(m.c.peer_msisdn, m.c.body, m.c.kind, m.c.customer_id).where(
                        m.c.flow == "hub_to_customer"
                    )
                )
            ),
        }


async def test_a_batch_declines_as_one_at_a_time_does(
    store: Store, tmp_path_factory: Any, backend: str
) -> None:
    ctx = await _context(store)
    txs = await _open(ctx, 8)
    results = await apply_declines(ctx, _declines(txs))
    # Moved: the REQUESTED, SUBMITTED and ADVISING ones, the first once; not the paid ones.
    assert results == [n % 4 != 3 for n in range(8)] + [False]
    batched = await _snapshot(store)

    async with second_store(store, backend, tmp_path_factory) as other:
        ctx2 = await _context(other)
        for one in _declines(await _open(ctx2, 8)):
            await apply_declines(ctx2, [one])
        alone = await _snapshot(other)
    assert batched == alone
    codes = {key: (state, code) for key, state, code in batched["transactions"]}
    assert codes["d:0"] == (T.DECLINED.value, "0014")  # the first refusal's code, not 0099
    assert codes["d:2"] == (T.DECLINED.value, "0017")
    assert codes["d:3"] == (T.TOKEN_ISSUED.value, None)
    # One reply per declined purchase with a phone (d:5 has none), each to the customer.
    assert len(batched["replies"]) == 5
    assert all(kind == "purchase-failed" and charged for _, _, kind, charged in batched["replies"])
    assert any("meter tidak dikenal" in body for _, body, _, _ in batched["replies"])


async def test_a_second_batch_finds_them_declined(store: Store) -> None:
    ctx = await _context(store)
    txs = await _open(ctx, 4)
    await apply_declines(ctx, _declines(txs))
    before = await _snapshot(store)
    assert await apply_declines(ctx, _declines(txs)) == [False] * 5
    assert await _snapshot(store) == before


def test_decide_takes_open_purchases_once_and_in_order() -> None:
    tx_a = _tx("a")
    tx_b = _tx("b")
    first, again, other = Decline(tx_a, "0014"), Decline(tx_a, "0015"), Decline(tx_b, "0014")
    states = {"a": T.SUBMITTED, "b": T.TOKEN_ISSUED}
    assert decide([first, again, other], states) == [first]
    assert decide([other], {"b": T.ADVISING}) == [other]
    assert decide([first], {}) == []  # not open any more (not read as open under lock)


def _tx(tx_id: str) -> Transaction:
    made = Transaction.requested(
        tx_id,
        idempotency_key=f"k:{tx_id}",
        meter_number=METER,
        customer_id=CUSTOMER,
        phone_msisdn=PHONE,
        amount_idr=20_000,
        request_message_id=None,
        at=T0,
    )
    return replace(made, state=T.SUBMITTED)


async def test_a_batch_costs_the_same_statements_for_2_purchases_as_for_40(store: Store) -> None:
    ctx = await _context(store)
    counts = []
    for tag, count in (("few", 2), ("many", 40)):
        txs = [tx for tx in await _open(ctx, count * 2, tag) if tx.state is T.SUBMITTED][:count]
        with _counting(store) as seen:
            assert all(await apply_declines(ctx, [Decline(tx, "0014") for tx in txs]))
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 8
