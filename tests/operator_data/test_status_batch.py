"""Send results and status reports applied set-wise (operator_data/hub/status_batch.py).

Many purchases' outbound SMS (token frames to the meter, receipts to the phone) get their
send results and status reports in one batch, in the orders a network produces them (a
result then its report, a report overtaking its result, a failure, a repeat, one for a
message nobody knows). The batch must leave the store exactly as applying the same events
one per transaction does, and take the same number of statements for 40 purchases as
for 2.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection

from gateway.transport import DeliveryReport, SendResult, SendStatus, TransportEvent
from operator_data.crypto import MasterKey
from operator_data.hub.context import HubContext
from operator_data.hub.sla import SlaMonitor
from operator_data.hub.status_batch import StatusEvent, apply_status, status_events
from operator_data.registry import Registry
from operator_data.settings import PriceTable, PriceVersion, Settings
from operator_data.store import Flow, MessageState, Store, TransactionState, schema
from operator_data.store.messages import enqueue_outbound, set_message_state
from operator_data.store.transactions import create_transaction, set_transaction_state
from tests.operator_data.hub_support import CUSTOMER, METER, PHONE, PRICES, register

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _settings() -> Settings:
    return Settings(
        prices=PriceTable(
            versions=[
                PriceVersion(
                    version="t1",
                    effective_from=datetime(2020, 1, 1, tzinfo=UTC),
                    prices_idr={flow: PRICES[flow] for flow in Flow},
                )
            ]
        )
    )


async def _context(store: Store) -> HubContext:
    master = MasterKey(secrets.token_bytes(32))
    settings = _settings()
    registry = Registry(store, master_key=master, pin_policy=settings.pin, clock=lambda: T0)
    await register(registry, secrets.token_bytes(16))
    return HubContext(
        settings=settings,
        store=store,
        registry=registry,
        master=master,
        clock=lambda: T0 + timedelta(minutes=5),
        sla=SlaMonitor(settings.sla),
        p2apst=None,
    )


async def _purchases(store: Store, count: int) -> list[tuple[str, str, str]]:
    """`count` transactions at TOKEN_ISSUED, each with a token frame and a receipt handed
    to a gateway (SUBMITTED); the first's receipt still QUEUED. (tx, frame, receipt)."""
    made = []
    async with store.begin() as conn:
        for n in range(count):
            tx, _ = await create_transaction(
                conn,
                idempotency_key=f"beli:{n}",
                meter_number=METER,
                customer_id=CUSTOMER,
                amount_idr=20_000,
                phone_msisdn=PHONE,
                at=T0,
            )
            for state in (TransactionState.SUBMITTED, TransactionState.TOKEN_ISSUED):
                await set_transaction_state(conn, tx.id, state, at=T0)
            frame, _ = await enqueue_outbound(
                conn,
                flow=Flow.HUB_TO_METER,
                idempotency_key=f"token:{n}",
                destination="+6281100000001",
                payload=b"frame",
                meter_number=METER,
                customer_id=CUSTOMER,
                kind="TOKEN_DELIVERY",
                transaction_id=tx.id,
                at=T0,
            )
            receipt, _ = await enqueue_outbound(
                conn,
                flow=Flow.HUB_TO_CUSTOMER,
                idempotency_key=f"receipt:{n}",
                destination=PHONE,
                payload=b"receipt",
                customer_id=CUSTOMER,
                kind="receipt",
                transaction_id=tx.id,
                at=T0,
            )
            await set_message_state(conn, frame.id, MessageState.SUBMITTED, at=T0)
            if n:
                await set_message_state(conn, receipt.id, MessageState.SUBMITTED, at=T0)
            made.append((tx.id, frame.id, receipt.id))
    return made


def _events(purchases: Sequence[tuple[str, str, str]], seed: int) -> list[StatusEvent]:
    """Every kind of outcome, shuffled across purchases but each message's own in an
    order a network produces."""
    rng = random.Random(seed)
    per_message: list[list[StatusEvent]] = []
    serial = iter(range(10_000))

    def eid() -> str:
        return f"e{next(serial)}"

    for n, (_, frame, receipt) in enumerate(purchases):
        sent_at = T0 + timedelta(seconds=1 + n)
        for message in (frame, receipt):
            result = SendResult(
                eid(), message, SendStatus.SENT, sent_at, gateway="gw1", modem=f"m{n % 3}"
            )
            report = DeliveryReport(eid(), message, PHONE, n, 0x00, sent_at, sent_at)
            kind = rng.randrange(6)
            if kind == 0:
                events: list[StatusEvent] = [result, report]
            elif kind == 1:
                events = [report, result]  # the report overtook its result
            elif kind == 2:
                failed = SendResult(eid(), message, SendStatus.FAILED, sent_at, error="no net")
                events = [failed, report]  # a report after a failure moves nothing
            elif kind == 3:
                events = [result, result, report, report]  # re-deliveries
            elif kind == 4:
                events = [result, DeliveryReport(eid(), message, PHONE, n, 0x41, None, sent_at)]
            else:
                events = [result, DeliveryReport(eid(), message, PHONE, n, 0x21, None, sent_at)]
            per_message.append(events)
    ordered: list[StatusEvent] = []
    while per_message:
        queue = rng.choice(per_message)
        ordered.append(queue.pop(0))
        if not queue:
            per_message.remove(queue)
    ordered.insert(rng.randrange(len(ordered)), SendResult("x1", "unknown", SendStatus.SENT, T0))
    ordered.insert(rng.randrange(len(ordered)), DeliveryReport("x2", None, PHONE, 9, 0, None, T0))
    return ordered


async def _snapshot(store: Store) -> dict[str, Any]:
    m, ms, t, ts = (
        schema.messages,
        schema.message_states,
        schema.transactions,
        schema.transaction_states,
    )
    async with store.read() as conn:
        return {
            "messages": sorted(
                tuple(r)
                for r in await conn.execute(
                    select(
                        m.c.idempotency_key, m.c.state, m.c.state_at, m.c.gateway_id, m.c.modem_id
                    )
                )
            ),
            "message_states": sorted(
                tuple(r)
                for r in await conn.execute(
                    select(m.c.idempotency_key, ms.c.state, ms.c.at, ms.c.detail).join(
                        ms, ms.c.message_id == m.c.id
                    )
                )
            ),
            "transactions": sorted(
                tuple(r) for r in await conn.execute(select(t.c.idempotency_key, t.c.state))
            ),
            "transaction_states": sorted(
                tuple(r)
                for r in await conn.execute(
                    select(t.c.idempotency_key, ts.c.state, ts.c.at).join(
                        ts, ts.c.transaction_id == t.c.id
                    )
                )
            ),
            "charged": sorted(
                tuple(r)
                for r in await conn.execute(
                    select(m.c.idempotency_key, schema.cost_ledger.c.amount_idr).join(
                        schema.cost_ledger, schema.cost_ledger.c.message_id == m.c.id
                    )
                )
            ),
            "outbox": sorted(
                str(r)
                for r in await conn.scalars(
                    select(m.c.idempotency_key).join(
                        schema.outbox, schema.outbox.c.message_id == m.c.id
                    )
                )
            ),
        }


@contextmanager
def _counting(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


@asynccontextmanager
async def second_store(store: Store, backend: str, tmp_path_factory: Any) -> AsyncIterator[Store]:
    """A store to replay the same work on, one event at a time: on SQLite a new file; on
    PostgreSQL the same database, emptied (as conftest does) once the first is read."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('alone') / 'pintar.db'}"
    else:
        names = ", ".join(f'"{t.name}"' for t in schema.metadata.sorted_tables)
        async with store.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        url = store.url.render_as_string(hide_password=False)
    async with Store(url) as other:
        if backend == "sqlite":
            await other.migrate()
        yield other


async def _batch(ctx: HubContext, events: Sequence[StatusEvent]) -> None:
    async with ctx.unit() as (conn, unit):
        await apply_status(ctx, conn, unit, events)


async def test_a_batch_leaves_the_store_as_one_event_at_a_time_does(
    store: Store, tmp_path_factory: Any, backend: str
) -> None:
    ctx = await _context(store)
    purchases = await _purchases(store, 12)
    events = _events(purchases, seed=7)
    await _batch(ctx, events)
    batched = await _snapshot(store)

    # The same on a second store, one event per transaction (the hub's fallback path).
    async with second_store(store, backend, tmp_path_factory) as other:
        ctx2 = await _context(other)
        # The same outcomes in the same order, naming this store's messages.
        for one in _events(await _purchases(other, 12), seed=7):
            await _batch(ctx2, [one])
        alone = await _snapshot(other)

    assert batched == alone
    states = {key: state for key, state, *_ in batched["messages"]}
    # Every outcome occurred, so the comparison above covered each path.
    assert {"delivered", "failed", "sent"} <= set(states.values())
    assert TransactionState.TOKEN_SENT.value in {state for _, state in batched["transactions"]}
    # Charged once each, and only what was carried.
    charged = [key for key, _ in batched["charged"]]
    assert len(charged) == len(set(charged))
    assert set(charged) <= {k for k, s in states.items() if s == "delivered"}
    # Every message got an answer: none is left for the outbox to offer again.
    assert batched["outbox"] == []


async def test_one_message_through_every_state_in_one_batch(store: Store) -> None:
    ctx = await _context(store)
    [(tx, frame, receipt)] = await _purchases(store, 1)  # its receipt is still QUEUED
    at = T0 + timedelta(seconds=3)
    await _batch(
        ctx,
        [
            SendResult("a", receipt, SendStatus.SENT, at, gateway="gw1", modem="m1"),
            DeliveryReport("b", receipt, PHONE, 1, 0x00, at, at + timedelta(seconds=1)),
            DeliveryReport("c", frame, PHONE, 2, 0x00, at, at),  # overtook its result
            SendResult("d", frame, SendStatus.SENT, at, gateway="gw2", modem="m2"),
        ],
    )
    snapshot = await _snapshot(store)
    history = [(k, s) for k, s, *_ in snapshot["message_states"]]
    assert sorted(s for k, s in history if k == "receipt:0") == sorted(
        ["queued", "submitted", "sent", "delivered"]
    )
    messages = {row[0]: row for row in snapshot["messages"]}
    assert messages["receipt:0"][1:] == (
        "delivered",
        at + timedelta(seconds=1),
        "gw1",
        "m1",
    )
    assert messages["token:0"][1] == "delivered"
    assert [state for _, state in snapshot["transactions"]] == ["token_sent"]
    assert ("beli:0", "token_sent", at) in snapshot["transaction_states"]
    assert sorted(k for k, _ in snapshot["charged"]) == ["receipt:0", "token:0"]
    assert snapshot["outbox"] == []
    assert tx


async def test_a_batch_costs_the_same_statements_for_2_purchases_as_for_40(
    store: Store,
) -> None:
    ctx = await _context(store)
    purchases = await _purchases(store, 42)

    def outcomes(part: Sequence[tuple[str, str, str]]) -> list[TransportEvent]:
        events: list[TransportEvent] = []
        for n, (_, frame, receipt) in enumerate(part):
            at = T0 + timedelta(seconds=1)  # within every SLA target: no breach rows
            for message in (frame, receipt):
                events.append(SendResult(f"r{message}", message, SendStatus.SENT, at))
                events.append(DeliveryReport(f"d{message}", message, PHONE, n, 0, at, at))
        return events

    counts = []
    for part in (purchases[:2], purchases[2:]):
        with _counting(store) as seen:
            await _batch(ctx, status_events(outcomes(part)))
        counts.append(len(seen))
    assert counts[0] == counts[1]
    snapshot = await _snapshot(store)
    assert {state for _, state, *_ in snapshot["messages"]} == {"delivered"}
    assert {state for _, state in snapshot["transactions"]} == {"token_sent"}
