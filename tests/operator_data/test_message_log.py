"""Message log, message/transaction state machines, cost ledger and outbox, on both backends."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from operator_data.crypto import MasterKey, SealError
from operator_data.registry import Registry
from operator_data.settings import PinPolicy
from operator_data.store import (
    MESSAGE_MACHINE,
    MESSAGES,
    METER_MACHINE,
    TRANSACTION_MACHINE,
    TRANSACTIONS,
    Flow,
    IllegalTransition,
    MessageState,
    NotFound,
    StateMachine,
    Store,
    TransactionState,
    history,
    outbox,
    schema,
)
from operator_data.store import messages as log
from operator_data.store import transactions as txs
from tests.operator_data.helpers import registered_meter

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_machines_are_consistent() -> None:
    machines: tuple[StateMachine[Any], ...] = (MESSAGE_MACHINE, TRANSACTION_MACHINE, METER_MACHINE)
    for machine in machines:
        states = machine.all_states()
        assert machine.initial <= states
        for source, targets in machine.transitions.items():
            assert source in states and targets <= states and source not in targets
            for target in targets:
                assert source in machine.predecessors(target)
        # every state is reachable from an initial one
        reached, frontier = set(machine.initial), list(machine.initial)
        while frontier:
            for nxt in machine.transitions.get(frontier.pop(), frozenset()):
                if nxt not in reached:
                    reached.add(nxt)
                    frontier.append(nxt)
        assert reached == states, machine.name


async def _queue(conn: object, key: str = "k1", **kw: object) -> log.Message:
    message, created = await log.enqueue_outbound(
        conn,  # type: ignore[arg-type]
        flow=Flow.HUB_TO_METER,
        idempotency_key=key,
        destination="+628112000001",
        payload=b"\x01frame",
        meter_number="14000000001",
        kind="token",
        at=T0,
        **kw,  # type: ignore[arg-type]
    )
    assert created
    return message


async def test_outbound_message_lifecycle(store: Store) -> None:
    async with store.begin() as conn:
        message = await _queue(conn)
        again, created = await log.enqueue_outbound(
            conn,
            flow=Flow.HUB_TO_METER,
            idempotency_key="k1",
            destination="+628112000001",
            payload=b"other",
        )
        assert not created and again.id == message.id
        assert message.state is MessageState.QUEUED and message.created_at == T0
        steps = [
            (MessageState.SUBMITTED, 1),
            (MessageState.QUEUED, 2),  # modem error: retry
            (MessageState.SUBMITTED, 3),
            (MessageState.SENT, 4),
            (MessageState.DELIVERED, 30),
        ]
        for state, seconds in steps:
            await log.set_message_state(
                conn, message.id, state, at=T0 + timedelta(seconds=seconds), modem_id="modem-1"
            )
        done = await log.get_message(conn, message.id)
        assert done.state is MessageState.DELIVERED and done.retries == 1
        assert done.modem_id == "modem-1" and done.state_at == T0 + timedelta(seconds=30)
        stamps = await history(conn, MESSAGES, message.id)
        assert [s.state for s in stamps] == [
            "queued",
            "submitted",
            "queued",
            "submitted",
            "sent",
            "delivered",
        ]
        assert stamps[0].at == T0 and stamps[-1].at.tzinfo is not None
        with pytest.raises(IllegalTransition):
            await log.set_message_state(conn, message.id, MessageState.FAILED)
        with pytest.raises(IllegalTransition):
            await log.set_message_state(conn, message.id, MessageState.PROCESSED)
        with pytest.raises(NotFound):
            await log.set_message_state(conn, "01NOTTHERE", MessageState.SENT)


async def test_inbound_dedup_and_reject(store: Store) -> None:
    async with store.begin() as conn:
        first, created = await log.record_inbound(
            conn,
            flow=Flow.CUSTOMER_TO_HUB,
            idempotency_key="gw1:42",
            peer_msisdn="+6281234567890",
            peer_raw="081234567890",
            body="SALDO",
            raw_pdu=b"\x07\x91",
            gateway_id="gw1",
        )
        dup, dup_created = await log.record_inbound(
            conn,
            flow=Flow.CUSTOMER_TO_HUB,
            idempotency_key="gw1:42",
            peer_msisdn="+6281234567890",
        )
        assert created and not dup_created and dup.id == first.id
        await log.set_message_state(
            conn, first.id, MessageState.REJECTED, reject_reason="unregistered sender"
        )
        got = await log.get_message(conn, first.id)
        assert got.state is MessageState.REJECTED and got.reject_reason == "unregistered sender"
        assert got.raw_pdu == b"\x07\x91"
        with pytest.raises(IllegalTransition):
            await log.set_message_state(conn, first.id, MessageState.SUBMITTED)
        with pytest.raises(ValueError, match="inbound"):
            await log.record_inbound(
                conn, flow=Flow.HUB_TO_METER, idempotency_key="x", peer_msisdn=None
            )


async def test_failed_retries_are_never_charged(store: Store) -> None:
    prices = {flow: 100 + n for n, flow in enumerate(Flow)}

    async def charge(conn: object, message_id: str) -> bool:
        return await log.charge_if_carried(
            conn,  # type: ignore[arg-type]
            message_id,
            price_version="v0",
            prices_idr=prices,
            at=T0,
        )

    async with store.begin() as conn:
        message = await _queue(conn, customer_id="530000000001")
        await log.set_message_state(conn, message.id, MessageState.SUBMITTED)
        assert not await charge(conn, message.id)  # not carried yet
        await log.set_message_state(conn, message.id, MessageState.FAILED)
        assert not await charge(conn, message.id)  # never carried
        other = await _queue(conn, key="k2", customer_id="530000000001")
        for state in (MessageState.SUBMITTED, MessageState.SENT):
            await log.set_message_state(conn, other.id, state)
        assert await charge(conn, other.id)
        await log.set_message_state(conn, other.id, MessageState.DELIVERED)
        assert not await charge(conn, other.id)  # charged once
        nobody = await _queue(conn, key="k3")
        for state in (MessageState.SUBMITTED, MessageState.SENT):
            await log.set_message_state(conn, nobody.id, state)
        assert not await charge(conn, nobody.id)  # no customer to charge
        assert not await charge(conn, "01NOSUCHMESSAGE00000000000")
        rows = (await conn.execute(select(schema.cost_ledger))).all()
        assert [
            (r.message_id, r.customer_id, r.amount_idr, r.flow, r.charged_at) for r in rows
        ] == [(other.id, "530000000001", prices[Flow.HUB_TO_METER], "hub_to_meter", T0)]


async def test_transaction_flow_and_sealed_token(
    store: Store, master_key: MasterKey, pin_policy: PinPolicy
) -> None:
    registry = Registry(store, master_key=master_key, pin_policy=pin_policy)
    number = await registered_meter(registry)
    token = "12345678901234567890"
    async with store.begin() as conn:
        t, created = await txs.create_transaction(
            conn,
            idempotency_key="buy:gw1:42",
            meter_number=number,
            customer_id="005300000001",
            amount_idr=50_000,
            at=T0,
        )
        again, created_again = await txs.create_transaction(
            conn,
            idempotency_key="buy:gw1:42",
            meter_number=number,
            customer_id="005300000001",
            amount_idr=50_000,
        )
        assert created and not created_again and again.id == t.id
        # Built from the row written, not read back: equal to what a read gives.
        assert t == again == await txs.get_transaction(conn, t.id)
        await txs.set_transaction_state(conn, t.id, TransactionState.SUBMITTED, stan="000000000001")
        await txs.set_transaction_state(conn, t.id, TransactionState.ADVISING, detail="no 2210")
        with pytest.raises(IllegalTransition):  # never reversed / never re-requested
            await txs.set_transaction_state(conn, t.id, TransactionState.REQUESTED)
        await txs.set_transaction_state(
            conn,
            t.id,
            TransactionState.TOKEN_ISSUED,
            pln_ref="PLN123",
            response_code="0000",
            kwh="33.8",
        )
        await txs.store_token(conn, t.id, token, master_key)
        for state in (
            TransactionState.TOKEN_SENT,
            TransactionState.METER_TIMEOUT,
            TransactionState.TOKEN_SENT,
            TransactionState.APPLIED,
            TransactionState.REPORTED,
        ):
            await txs.set_transaction_state(conn, t.id, state)
        with pytest.raises(ValueError, match="cannot set"):
            await txs.set_transaction_state(conn, t.id, TransactionState.REPORTED, amount_idr=1)
        done = await txs.get_transaction(conn, t.id)
        assert done.state is TransactionState.REPORTED and done.pln_ref == "PLN123"
        assert done.token_masked == "1234 **** **** **** 7890" and done.has_token
        raw = await conn.scalar(select(schema.transactions.c.token_sealed))
        assert raw is not None
        assert token.encode() not in raw
        assert await txs.reveal_token(conn, t.id, master_key) == token
        with pytest.raises(SealError):
            await txs.reveal_token(conn, t.id, MasterKey(secrets.token_bytes(32)))
        states = [s.state for s in await history(conn, TRANSACTIONS, t.id)]
        assert states == [
            "requested",
            "submitted",
            "advising",
            "token_issued",
            "token_sent",
            "meter_timeout",
            "token_sent",
            "applied",
            "reported",
        ]


async def test_timestamps_are_utc_aware(store: Store) -> None:
    wib = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Jakarta")
    )
    async with store.begin() as conn:
        message, _ = await log.record_inbound(
            conn,
            flow=Flow.METER_TO_HUB,
            idempotency_key="m1",
            peer_msisdn="+628112000001",
            at=wib,
        )
        assert message.created_at == wib and message.created_at.utcoffset() == timedelta(0)
        with pytest.raises(Exception, match="naive"):
            await log.record_inbound(
                conn,
                flow=Flow.METER_TO_HUB,
                idempotency_key="m2",
                peer_msisdn=None,
                at=datetime(2026, 3, 2, 9, 0),
            )


async def _fill_outbox(store: Store, count: int) -> set[int]:
    async with store.begin() as conn:
        for i in range(count):
            await _queue(conn, key=f"k{i}", priority=100 - (i % 3))
        return set((await conn.execute(select(schema.outbox.c.id))).scalars().all())


async def test_outbox_claim_lease_complete_release(store: Store) -> None:
    ids = await _fill_outbox(store, 5)
    now = T0 + timedelta(seconds=1)
    async with store.begin() as conn:
        first = await outbox.claim(conn, "w1", limit=3, now=now)
    assert len(first) == 3 and [i.priority for i in first] == sorted(i.priority for i in first)
    assert all(i.attempts == 1 and i.payload == b"\x01frame" for i in first)
    async with store.begin() as conn:
        second = await outbox.claim(conn, "w2", limit=10, now=now)
    assert {i.id for i in first} | {i.id for i in second} == ids
    assert not {i.id for i in first} & {i.id for i in second}
    async with store.begin() as conn:
        assert await outbox.claim(conn, "w3", now=now) == []  # all leased
        assert await outbox.complete(conn, first[0].id, "w1")
        assert not await outbox.complete(conn, first[1].id, "w2")  # not w2's lease
        assert await outbox.release(conn, first[1].id, "w1", retry_at=now + timedelta(minutes=1))
    later = now + timedelta(seconds=30)
    async with store.begin() as conn:
        assert await outbox.claim(conn, "w3", now=later) == []
    # After the lease runs out a dead worker's rows are claimable again.
    expired = now + timedelta(minutes=2)
    async with store.begin() as conn:
        again = await outbox.claim(conn, "w3", limit=10, now=expired)
        assert {i.id for i in again} == ids - {first[0].id}
        assert max(i.attempts for i in again) == 2
        assert await outbox.pending_count(conn) == 4


async def test_concurrent_claimers_never_share_a_row(store: Store) -> None:
    ids = await _fill_outbox(store, 40)
    now = T0 + timedelta(seconds=1)
    claimed: dict[str, list[int]] = {}

    async def worker(name: str) -> None:
        mine = claimed.setdefault(name, [])
        while True:
            async with store.begin() as conn:
                batch = await outbox.claim(conn, name, limit=3, now=now)
            if not batch:
                return
            mine.extend(i.id for i in batch)

    await asyncio.gather(*(worker(f"w{n}") for n in range(4)))
    every = [i for ids_ in claimed.values() for i in ids_]
    assert sorted(every) == sorted(ids)  # each row exactly once


async def test_second_claimer_while_the_first_is_open(store: Store, backend: str) -> None:
    """Two connections, the first claimer's transaction still open. PostgreSQL: the second
    skips the locked rows at once (FOR UPDATE SKIP LOCKED). SQLite: the second waits for
    the write lock (BEGIN IMMEDIATE + busy timeout) and then sees the first's claims."""
    ids = await _fill_outbox(store, 6)
    now = T0 + timedelta(seconds=1)

    async def second() -> list[outbox.OutboxItem]:
        async with store.begin() as two:
            return await outbox.claim(two, "w2", limit=10, now=now)

    async with store.engine.connect() as one:
        if store.dialect == "sqlite":
            await one.execution_options(pintar_sqlite_immediate=True)
        async with one.begin():
            a = await outbox.claim(one, "w1", limit=4, now=now)
            if backend == "postgresql":
                b = await asyncio.wait_for(second(), 10)
            else:
                waiting = asyncio.create_task(second())
        if backend == "sqlite":
            b = await asyncio.wait_for(waiting, 10)
    assert len(a) == 4 and len(b) == 2
    assert {i.id for i in a} | {i.id for i in b} == ids
    async with store.read() as conn:
        owners = dict(
            (await conn.execute(select(schema.outbox.c.id, schema.outbox.c.claimed_by))).all()
        )
        assert sorted(owners.values()) == ["w1"] * 4 + ["w2"] * 2
        assert await conn.scalar(select(func.count()).select_from(schema.outbox)) == 6


async def test_losing_an_idempotency_race_returns_the_winner(store: Store) -> None:
    """No look-up comes first: the unique key decides (INSERT ... ON CONFLICT DO NOTHING),
    so the loser gets the winner's message and its transaction stays usable."""
    async with store.begin() as conn:
        winner, _ = await log.record_inbound(
            conn, flow=Flow.METER_TO_HUB, idempotency_key="gw1:7", peer_msisdn="+628112000001"
        )
    async with store.begin() as conn:
        got, created = await log.record_inbound(
            conn, flow=Flow.METER_TO_HUB, idempotency_key="gw1:7", peer_msisdn="+628112000009"
        )
        assert not created and got.id == winner.id and got.peer_msisdn == "+628112000001"
        _, created = await log.record_inbound(
            conn, flow=Flow.METER_TO_HUB, idempotency_key="gw1:8", peer_msisdn=None
        )
        assert created
    async with store.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(schema.messages)) == 2
        states = await conn.scalar(select(func.count()).select_from(schema.message_states))
        assert states == 2  # the loser wrote no history row


async def test_a_logged_message_is_returned_exactly_as_it_reads_back(store: Store) -> None:
    """record_inbound / enqueue_outbound build the message they return instead of reading
    it back: it must equal the stored row, zone and all (written here in WIB)."""
    wib = timezone(timedelta(hours=7))
    async with store.begin() as conn:
        inbound, _ = await log.record_inbound(
            conn,
            flow=Flow.CUSTOMER_TO_HUB,
            idempotency_key="gw1:in-1",
            peer_msisdn="+628112000001",
            peer_raw="08112000001",
            gateway_id="gw1",
            modem_id="m1",
            body="SALDO",
            raw_pdu=b"\x07\x91pdu",
            correlation_id="c-1",
            at=datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=wib),
        )
        outbound, _ = await log.enqueue_outbound(
            conn,
            flow=Flow.HUB_TO_CUSTOMER,
            idempotency_key="reply:in-1",
            destination="+628112000001",
            payload=b"Saldo",
            customer_id="512345678901",
            kind="reply",
            body="Saldo",
            in_reply_to=inbound.id,
            at=datetime(2026, 3, 2, 9, 0, 1, tzinfo=wib),
        )
    async with store.read() as conn:
        assert await log.get_message(conn, inbound.id) == inbound
        assert await log.get_message(conn, outbound.id) == outbound
    assert inbound.created_at.tzinfo is UTC and outbound.state_at.tzinfo is UTC
