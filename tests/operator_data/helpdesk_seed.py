"""Seed data for the helpdesk app tests, written through the store and registry APIs
(alarms and SLA events have no writer API yet: the hub records them, so plain inserts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, update

from operator_data.api.auth import Accounts, Role
from operator_data.registry import CustomerIn, MeterIn, Registry, SimIn
from operator_data.store import Flow, Store, TransactionState, schema, utcnow
from operator_data.store.messages import enqueue_outbound, record_inbound, set_message_state
from operator_data.store.states import MessageState
from operator_data.store.transactions import create_transaction, set_transaction_state, store_token

CLEAR_TOKEN = "73915264085731924608"
OTHER_TOKEN = "55510293847561029384"
PASSWORD = "rahasia-sekali-123"
CUSTOMER_ID = "530000000001"
CUSTOMER_NAME = "Budi Santoso"
METER = "14000000001"
METER_SIM = "+628112000001"
SPARE_SIM = "+628112000002"
PHONE = "+6281234567890"
PHONE_LOCAL = "081234567890"


@dataclass(frozen=True)
class Seeded:
    complete_txn: str
    stuck_txn: str
    alarm_ids: list[int]
    swap_id: int
    keys: dict[Role, str]
    now: datetime
    message_count: int


async def seed(
    store: Store,
    registry: Registry,
    *,
    extra_messages: int = 6,
    spacing: timedelta = timedelta(minutes=10),
    now: datetime | None = None,
) -> Seeded:
    """The helpdesk's data, from two hours before `now` (the wall clock if not given) up
    to it."""
    now = now or utcnow()
    t0 = now - timedelta(hours=2)
    master = registry.require_master_key()

    await registry.create_customer(CustomerIn(CUSTOMER_ID, CUSTOMER_NAME, "R1", 1300))
    await registry.create_meter(MeterIn(METER, CUSTOMER_ID, "123456", "01", 1, 2))
    await registry.create_sim(SimIn(METER_SIM, "8962100000000000001", "Telkomsel", "PT OD"))
    await registry.create_sim(SimIn(SPARE_SIM, "8962100000000000002", "Telkomsel", "PT OD"))
    await registry.bind_sim(METER_SIM, METER, actor="seed")
    swap = await registry.request_sim_swap(
        METER, SPARE_SIM, requested_by="sari", reason="SIM rusak"
    )
    await registry.register_phone(PHONE, CUSTOMER_ID)

    count = 0
    async with store.begin() as conn:
        # A purchase that went all the way.
        request, _ = await record_inbound(
            conn,
            flow=Flow.CUSTOMER_TO_HUB,
            idempotency_key="in-1",
            peer_msisdn=PHONE,
            peer_raw=PHONE_LOCAL,
            customer_id=CUSTOMER_ID,
            meter_number=METER,
            kind="BELI",
            body="BELI 14000000001 50000",
            at=t0,
        )
        count += 1
        done, _ = await create_transaction(
            conn,
            idempotency_key="buy-1",
            meter_number=METER,
            customer_id=CUSTOMER_ID,
            amount_idr=50_000,
            phone_msisdn=PHONE,
            request_message_id=request.id,
            at=t0,
        )
        await set_transaction_state(conn, done.id, TransactionState.SUBMITTED, at=t0 + _s(1))
        await set_transaction_state(
            conn, done.id, TransactionState.TOKEN_ISSUED, at=t0 + _s(3), kwh="34.5"
        )
        await store_token(conn, done.id, CLEAR_TOKEN, master)
        token_sms, _ = await enqueue_outbound(
            conn,
            flow=Flow.HUB_TO_METER,
            idempotency_key="out-1",
            destination=METER_SIM,
            payload=b"\x01frame",
            meter_number=METER,
            customer_id=CUSTOMER_ID,
            kind="token_delivery",
            transaction_id=done.id,
            at=t0 + _s(4),
        )
        await set_message_state(conn, token_sms.id, MessageState.SUBMITTED, at=t0 + _s(5))
        await set_message_state(conn, token_sms.id, MessageState.SENT, at=t0 + _s(6))
        await set_transaction_state(conn, done.id, TransactionState.TOKEN_SENT, at=t0 + _s(6))
        await record_inbound(
            conn,
            flow=Flow.METER_TO_HUB,
            idempotency_key="in-2",
            peer_msisdn=METER_SIM,
            meter_number=METER,
            customer_id=CUSTOMER_ID,
            kind="token_result",
            transaction_id=done.id,
            at=t0 + _s(60),
        )
        await set_transaction_state(conn, done.id, TransactionState.APPLIED, at=t0 + _s(61))
        await set_transaction_state(conn, done.id, TransactionState.REPORTED, at=t0 + _s(63))
        count += 2

        # A purchase whose token SMS went out but the meter never answered.
        t1 = now - timedelta(minutes=30)
        stuck, _ = await create_transaction(
            conn,
            idempotency_key="buy-2",
            meter_number=METER,
            customer_id=CUSTOMER_ID,
            amount_idr=20_000,
            phone_msisdn=PHONE,
            at=t1,
        )
        await set_transaction_state(conn, stuck.id, TransactionState.SUBMITTED, at=t1 + _s(1))
        await set_transaction_state(conn, stuck.id, TransactionState.TOKEN_ISSUED, at=t1 + _s(2))
        await store_token(conn, stuck.id, OTHER_TOKEN, master)
        await enqueue_outbound(
            conn,
            flow=Flow.HUB_TO_METER,
            idempotency_key="out-2",
            destination=METER_SIM,
            payload=b"\x01frame2",
            meter_number=METER,
            kind="token_delivery",
            transaction_id=stuck.id,
            at=t1 + _s(3),
        )
        await set_transaction_state(conn, stuck.id, TransactionState.TOKEN_SENT, at=t1 + _s(4))
        count += 1

        for i in range(extra_messages):
            await record_inbound(
                conn,
                flow=Flow.METER_TO_HUB,
                idempotency_key=f"telemetry-{i}",
                peer_msisdn=METER_SIM,
                meter_number=METER,
                customer_id=CUSTOMER_ID,
                kind="telemetry",
                at=t0 - spacing * (i + 1),
            )
            count += 1

        alarm_ids = []
        for code, severity, minutes in (("tamper", "critical", 50), ("low_credit", "warning", 20)):
            result = await conn.execute(
                insert(schema.alarms)
                .values(
                    meter_number=METER,
                    code=code,
                    severity=severity,
                    received_at=now - timedelta(minutes=minutes),
                )
                .returning(schema.alarms.c.id)
            )
            alarm_ids.append(int(result.scalar_one()))
        for metric, met, duration in (
            ("token_to_network", True, 3000),
            ("meter_answer", True, 55_000),
            ("report_to_p2apst", True, 2000),
            ("meter_answer", False, 900_000),
        ):
            await conn.execute(
                insert(schema.sla_events).values(
                    metric=metric,
                    subject_type="transaction",
                    subject_id=done.id if met else stuck.id,
                    started_at=now - timedelta(minutes=25),
                    ended_at=now,
                    duration_ms=duration,
                    target_ms=300_000 if metric == "meter_answer" else 10_000,
                    met=met,
                    recorded_at=now,
                )
            )
        # The PIN is locked after too many wrong tries.
        await conn.execute(
            update(schema.customer_phones)
            .where(schema.customer_phones.c.msisdn == PHONE)
            .values(locked_until=now + timedelta(minutes=30), failed_attempts=0)
        )

    accounts = Accounts(store)
    keys = {}
    for name, role in (("hana", Role.HELPDESK), ("sari", Role.SUPERVISOR), ("ade", Role.ADMIN)):
        user = await accounts.create_user(name, role, PASSWORD)
        keys[role] = await accounts.create_api_key(user, "tests")
    return Seeded(done.id, stuck.id, alarm_ids, swap.swap_id, keys, now, count)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


class RecordingActions:
    """The hub's action hooks as the hub would see them: records what it was asked to do
    and otherwise behaves like the registry-backed defaults."""

    def __init__(self, registry: Registry) -> None:
        from operator_data.api.providers import RegistryActions

        self._inner = RegistryActions(registry)
        self.resent: list[tuple[str, str, str]] = []

    async def resend_token(self, transaction_id: str, actor: str, reason: str) -> str:
        self.resent.append((transaction_id, actor, reason))
        return f"token of {transaction_id} queued again"

    async def unlock_pin(self, msisdn: str, actor: str) -> str:
        return await self._inner.unlock_pin(msisdn, actor)

    async def approve_sim_swap(self, swap_id: int, actor: str) -> str:
        return await self._inner.approve_sim_swap(swap_id, actor)

    async def acknowledge_alarm(self, alarm_id: int, actor: str) -> str:
        return await self._inner.acknowledge_alarm(alarm_id, actor)
