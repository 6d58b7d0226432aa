"""Meters' TOKEN_RESULT answers applied set-wise (operator_data/hub/token_batch.py).

Answers for many purchases in one batch (accepted, refused, a USED answer to a resend, a
repeat, one naming a delivery of another meter, one that overtook its token frame's send
result) leave the store exactly as answering them one per transaction does, and cost the
same statements for 40 purchases as for 2.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from firmware_protocol.frames import TokenOutcome, TokenResult
from operator_data.hub.context import HubContext
from operator_data.hub.token_batch import MeterAnswer, apply_token_results
from operator_data.store import Flow, Store, TransactionState, schema
from operator_data.store.messages import record_inbound
from operator_data.store.transactions import create_transaction, set_transaction_state, store_token
from operator_data.store.workflow_schema import hub_deliveries, hub_reports
from tests.operator_data.hub_support import CUSTOMER, METER, PHONE, make_token
from tests.operator_data.test_status_batch import T0, _context, _counting, second_store

T = TransactionState


async def _issued(ctx: HubContext, count: int) -> list[tuple[str, int]]:
    """`count` purchases with a token issued and a delivery each: (transaction, delivery).
    Every third is TOKEN_SENT already, every fifth was sent twice."""
    made = []
    async with ctx.store.begin() as conn:
        for n in range(count):
            tx, _ = await create_transaction(
                conn,
                idempotency_key=f"beli:{n}",
                meter_number=METER,
                customer_id=CUSTOMER,
                amount_idr=20_000,
                phone_msisdn=PHONE if n % 4 else None,  # some pushed: told on the phone
                at=T0,
            )
            states = [T.SUBMITTED, T.TOKEN_ISSUED] + ([T.TOKEN_SENT] if n % 3 == 0 else [])
            for state in states:
                await set_transaction_state(conn, tx.id, state, at=T0)
            await store_token(conn, tx.id, make_token(rnd=n % 16), ctx.master)
            result = await conn.execute(
                insert(hub_deliveries)
                .values(
                    transaction_id=tx.id,
                    meter_number=METER,
                    attempts=2 if n % 5 == 0 else 1,
                    next_check_at=T0,
                    escalated=False,
                    created_at=T0,
                )
                .returning(hub_deliveries.c.id)
            )
            made.append((tx.id, int(result.scalar_one())))
    return made


async def _answers(
    ctx: HubContext, purchases: Sequence[tuple[str, int]], seed: int
) -> list[MeterAnswer]:
    rng = random.Random(seed)
    outcomes = list(TokenOutcome)
    plan: list[tuple[int, TokenOutcome, str]] = []
    for _, delivery in purchases:
        outcome = rng.choice([TokenOutcome.ACCEPTED] * 3 + outcomes)
        plan.append((delivery, outcome, METER))
        if rng.random() < 0.2:
            plan.append((delivery, TokenOutcome.ACCEPTED, METER))  # the meter said it twice
    plan.append((purchases[0][1], TokenOutcome.ACCEPTED, "14000000099"))  # not its delivery
    plan.append((999_999, TokenOutcome.ACCEPTED, METER))  # no such delivery
    rng.shuffle(plan)
    answers = []
    async with ctx.store.begin() as conn:
        for n, (delivery, outcome, meter) in enumerate(plan):
            message, _ = await record_inbound(
                conn,
                flow=Flow.METER_TO_HUB,
                idempotency_key=f"sms:answer:{n}",
                peer_msisdn="+6281100000001",
                meter_number=meter,
                customer_id=CUSTOMER,
                kind="TOKEN_RESULT",
                raw_pdu=b"frame",
                at=T0,
            )
            result = TokenResult(
                reference=delivery,
                outcome=outcome,
                at=T0 + timedelta(seconds=n),
                credit_kwh=Decimal("20.5"),
                added_kwh=Decimal("15.2") if outcome is TokenOutcome.ACCEPTED else Decimal(0),
            )
            answers.append(MeterAnswer(message, meter, result, T0 + timedelta(seconds=2 + n)))
    return answers


async def _apply(ctx: HubContext, answers: Sequence[MeterAnswer]) -> dict[str, str]:
    async with ctx.unit() as (conn, unit):
        return await apply_token_results(ctx, conn, unit, answers)


async def _snapshot(store: Store) -> dict[str, Any]:
    t, ts, m, ms = (
        schema.transactions,
        schema.transaction_states,
        schema.messages,
        schema.message_states,
    )
    async with store.read() as conn:

        def rows(query: Any) -> Any:
            return conn.execute(query)

        return {
            "transactions": sorted(
                tuple(r)
                for r in await rows(
                    select(t.c.idempotency_key, t.c.state, t.c.state_at, t.c.meter_outcome)
                )
            ),
            "history": sorted(
                tuple(r)
                for r in await rows(
                    select(t.c.idempotency_key, ts.c.state, ts.c.at, ts.c.detail).join(
                        ts, ts.c.transaction_id == t.c.id
                    )
                )
            ),
            "deliveries": sorted(
                tuple(r)
                for r in await rows(
                    select(
                        t.c.idempotency_key,
                        hub_deliveries.c.outcome,
                        hub_deliveries.c.next_check_at,
                        hub_deliveries.c.finished_at,
                    ).join(hub_deliveries, hub_deliveries.c.transaction_id == t.c.id)
                )
            ),
            "texts": sorted(
                tuple(r)
                for r in await rows(
                    select(m.c.idempotency_key, m.c.kind, m.c.body, m.c.peer_msisdn).where(
                        m.c.direction == "out"
                    )
                )
            ),
            "answers": sorted(
                tuple(r)
                for r in await rows(
                    select(m.c.idempotency_key, ms.c.state, ms.c.detail)
                    .join(ms, ms.c.message_id == m.c.id)
                    .where(m.c.direction == "in")
                )
            ),
            "reports": sorted(
                tuple(r)
                for r in await rows(
                    select(t.c.idempotency_key, hub_reports.c.acknowledged).join(
                        hub_reports, hub_reports.c.transaction_id == t.c.id
                    )
                )
            ),
            "incidents": int(
                await conn.scalar(select(func.count()).select_from(schema.helpdesk_items)) or 0
            ),
            "charged": int(
                await conn.scalar(select(func.count()).select_from(schema.cost_ledger)) or 0
            ),
        }


def _without_ids(snapshot: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """Transaction ids (ULIDs, and the 12-character references cut from them, in texts,
    keys and notes) replaced by their idempotency keys, then each table sorted."""

    def plain(value: Any) -> str:
        text_form = repr(value)
        for ulid, key in ids.items():
            text_form = text_form.replace(ulid, key).replace(ulid[-12:], key)
        return text_form

    return {
        name: sorted(plain(row) for row in value) if isinstance(value, list) else value
        for name, value in snapshot.items()
    }


async def _ids(store: Store) -> dict[str, str]:
    t = schema.transactions
    async with store.read() as conn:
        return {
            r.id: r.idempotency_key for r in await conn.execute(select(t.c.id, t.c.idempotency_key))
        }


async def test_a_batch_of_answers_leaves_the_store_as_one_at_a_time_does(
    store: Store, tmp_path_factory: Any, backend: str
) -> None:
    ctx = await _context(store)
    answers = await _answers(ctx, await _issued(ctx, 15), seed=3)
    notes = await _apply(ctx, answers)
    assert set(notes) == {a.message.id for a in answers}
    batched = _without_ids(await _snapshot(store), await _ids(store))

    async with second_store(store, backend, tmp_path_factory) as other:
        ctx2 = await _context(other)
        for one in await _answers(ctx2, await _issued(ctx2, 15), seed=3):
            await _apply(ctx2, [one])
        alone = _without_ids(await _snapshot(other), await _ids(other))
    assert batched == alone
    snapshot = await _snapshot(store) if backend == "sqlite" else None
    if snapshot is not None:
        states = {state for _, state, *_ in snapshot["transactions"]}
        assert {"applied", "meter_rejected"} <= states  # both paths were compared
        assert snapshot["incidents"] > 0
        assert any("repeated answer" in str(d) for *_, d in snapshot["answers"])
        assert any("no token delivery" in str(d) for *_, d in snapshot["answers"])
        # One report per answered purchase, never two.
        keys = [k for k, _ in snapshot["reports"]]
        assert (
            len(keys)
            == len(set(keys))
            == sum(
                s in ("applied", "meter_rejected") for s in (r[1] for r in snapshot["transactions"])
            )
        )
        # Receipts keep the token masked in the log.
        receipts = [body for _, kind, body, _ in snapshot["texts"] if kind == "receipt"]
        assert receipts and all("*" in body for body in receipts)


async def test_answers_cost_the_same_statements_for_2_purchases_as_for_40(store: Store) -> None:
    ctx = await _context(store)
    purchases = await _issued(ctx, 42)
    counts = []
    for part in (purchases[:2], purchases[2:]):
        answers = []
        async with store.begin() as conn:
            for n, (_, delivery) in enumerate(part):
                message, _ = await record_inbound(
                    conn,
                    flow=Flow.METER_TO_HUB,
                    idempotency_key=f"sms:{delivery}:{n}",
                    peer_msisdn="+6281100000001",
                    meter_number=METER,
                    customer_id=CUSTOMER,
                    at=T0,
                )
                result = TokenResult(delivery, TokenOutcome.ACCEPTED, T0, Decimal(1), Decimal(1))
                answers.append(MeterAnswer(message, METER, result, T0 + timedelta(seconds=1)))
        with _counting(store) as seen:
            await _apply(ctx, answers)
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    assert counts[1] < 40
    snapshot = await _snapshot(store)
    assert {state for _, state, *_ in snapshot["transactions"]} == {"applied"}


async def test_nothing_clear_at_rest(store: Store, tmp_path: Path) -> None:
    """The receipts' outbox payloads are sealed: no token digits in the outbox."""
    ctx = await _context(store)
    purchases = await _issued(ctx, 3)
    answers = await _answers(ctx, purchases, seed=1)
    await _apply(ctx, answers)
    async with store.read() as conn:
        payloads = list(await conn.scalars(select(schema.outbox.c.payload)))
    tokens = [make_token(rnd=n % 16) for n in range(3)]
    assert payloads
    assert not any(token.encode() in bytes(p) for p in payloads for token in tokens)
