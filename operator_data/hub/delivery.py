"""Token delivery: TOKEN_DELIVERY frame to the meter (its TOKEN_RESULT, the receipt and the
report to P2APST: token_batch.py); resends and escalation when the meter is silent.

Timers live in `hub_deliveries.next_check_at` and are acted on by `sweep_deliveries`, so a
restart loses none. A resend carries the same token under a new counter: the meter
refuses a TID it has already accepted, so a resend can never credit twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import TokenDelivery
from operator_data.commands.replies import Reply, render
from operator_data.hub.context import HubContext, Unit
from operator_data.hub.formatting import short_ref
from operator_data.hub.helpdesk import open_incident
from operator_data.hub.lifecycle import FINISHED, RESENDABLE, PurchaseEvent, step
from operator_data.hub.meter_link import lock_meter
from operator_data.hub.outbound import (
    PRIORITY_RECEIPT,
    PRIORITY_TOKEN,
    queue_frame,
    queue_text,
)
from operator_data.hub.sla import Metric, SlaBreach, SlaMonitor
from operator_data.registry import CommsKey
from operator_data.registry.models import Conflict
from operator_data.store import TransactionState, schema
from operator_data.store.transactions import (
    Transaction,
    get_transaction,
    reveal_token,
    set_transaction_state,
)
from operator_data.store.transitions import TRANSACTIONS, transition_many
from operator_data.store.workflow_schema import hub_deliveries

log = logging.getLogger("operator_data.hub.delivery")
T = TransactionState
_ACKNOWLEDGED = step(PurchaseEvent.REPORT_ACKNOWLEDGED)
_SILENT = step(PurchaseEvent.METER_SILENT)

NO_ANSWER = "meter tidak menjawab"


async def customer_phone(conn: AsyncConnection, tx: Transaction) -> str | None:
    if tx.phone_msisdn:
        return tx.phone_msisdn
    phones = schema.customer_phones
    value = await conn.scalar(
        select(phones.c.msisdn)
        .where(phones.c.customer_id == tx.customer_id)
        .order_by(phones.c.created_at, phones.c.msisdn)
        .limit(1)
    )
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """Where a meter's token frame goes: its comms key and its SIM's number."""

    key: CommsKey
    to: str


async def targets(ctx: HubContext, meters: Sequence[str]) -> dict[str, DeliveryTarget | str]:
    """Each meter's comms key and SIM, or why its token cannot go: one read for all."""
    keys, numbers = await ctx.registry.comms_keys_and_sims(meters)
    wanted = sorted(set(meters))
    found: dict[str, DeliveryTarget | str] = {}
    for meter in wanted:
        key = keys.get(meter)
        if key is None or isinstance(key, Exception):
            found[meter] = f"no comms key: {key}"
        elif meter not in numbers:
            found[meter] = "the meter has no SIM"
        else:
            found[meter] = DeliveryTarget(key, numbers[meter])
    return found


async def start_delivery(
    ctx: HubContext,
    conn: AsyncConnection,
    unit: Unit,
    tx: Transaction,
    *,
    token: str | None = None,
    target: DeliveryTarget | str | None = None,
    fresh: bool = False,
) -> None:
    """Begin delivering the token of a TOKEN_ISSUED transaction (idempotent). `token` and
    `target`, when the caller has them, spare reading them again; `fresh`: the caller has
    just moved the transaction to TOKEN_ISSUED itself, so it has no delivery yet."""
    if not fresh:
        row = (
            await conn.execute(
                select(hub_deliveries.c.id).where(hub_deliveries.c.transaction_id == tx.id)
            )
        ).first()
        if row is not None:
            return
    now = ctx.now()
    result = await conn.execute(
        insert(hub_deliveries)
        .values(
            transaction_id=tx.id,
            meter_number=tx.meter_number,
            attempts=0,
            next_check_at=now,
            escalated=False,
            created_at=now,
        )
        .returning(hub_deliveries.c.id)
    )
    await _send_attempt(
        ctx, conn, unit, int(result.scalar_one()), 0, tx, token=token, target=target
    )


async def _send_attempt(
    ctx: HubContext,
    conn: AsyncConnection,
    unit: Unit,
    delivery_id: int,
    attempts: int,
    tx: Transaction,
    *,
    token: str | None = None,
    target: DeliveryTarget | str | None = None,
) -> None:
    if target is None:
        target = (await targets(ctx, [tx.meter_number]))[tx.meter_number]
    if isinstance(target, str):
        await escalate(ctx, conn, delivery_id, tx, "meter belum siap", target)
        return
    if token is None:
        token = await reveal_token(conn, tx.id, ctx.master)
    attempt = attempts + 1
    _, counter = await queue_frame(
        ctx,
        conn,
        target.key,
        TokenDelivery(reference=delivery_id, token=token),
        idempotency_key=f"token:{tx.id}:{attempt}",
        to=target.to,
        customer_id=tx.customer_id,
        transaction_id=tx.id,
        priority=PRIORITY_TOKEN,
    )
    await conn.execute(
        update(hub_deliveries)
        .where(hub_deliveries.c.id == delivery_id)
        .values(
            attempts=attempt,
            next_check_at=ctx.now() + timedelta(seconds=ctx.settings.sla.meter_answer_s),
            last_frame_message_id=counter,
        )
    )
    log.info("token of %s to meter %s, attempt %d", tx.id, tx.meter_number, attempt)


async def escalate(
    ctx: HubContext,
    conn: AsyncConnection,
    delivery_id: int,
    tx: Transaction,
    customer_reason: str,
    notes: str,
) -> None:
    now = ctx.now()
    await conn.execute(
        update(hub_deliveries)
        .where(hub_deliveries.c.id == delivery_id)
        .values(next_check_at=None, escalated=True)
    )
    phone = await customer_phone(conn, tx)
    await open_incident(
        conn,
        category="token_delivery",
        subject=f"Token {short_ref(tx.id)} not applied on meter {tx.meter_number}",
        notes=notes,
        at=now,
        customer_id=tx.customer_id,
        meter_number=tx.meter_number,
        msisdn=phone,
        transaction_id=tx.id,
    )
    if phone is not None:
        await queue_text(
            ctx,
            conn,
            idempotency_key=f"escalated:{tx.id}",
            to=phone,
            text=render(
                Reply.TOKEN_REJECTED,
                ctx.lang,
                meter=tx.meter_number,
                reason=customer_reason,
                ref=short_ref(tx.id),
            ),
            kind="token-rejected",
            customer_id=tx.customer_id,
            meter_number=tx.meter_number,
            transaction_id=tx.id,
            priority=PRIORITY_RECEIPT,
        )


async def sla_check(
    ctx: HubContext,
    conn: AsyncConnection,
    unit: Unit,
    metric: Metric,
    transaction_id: str,
    started_at: datetime,
    ended_at: datetime | None,
) -> None:
    breach = await ctx.sla.check(
        conn,
        metric,
        subject_type="transaction",
        subject_id=transaction_id,
        started_at=started_at,
        ended_at=ended_at,
        now=ctx.now(),
    )
    if breach is not None:

        async def publish() -> None:
            ctx.sla.publish(breach)

        unit.later(publish)


async def reports_acknowledged(
    conn: AsyncConnection, sla: SlaMonitor, transaction_ids: Sequence[str], at: datetime
) -> list[SlaBreach]:
    """P2APST confirmed these purchases' reports: each still APPLIED, METER_REJECTED or
    METER_TIMEOUT moves to REPORTED (in the caller's transaction: the one that marks the
    reports acknowledged), set-wise: one read of when each got there (locked on
    PostgreSQL), one conditional UPDATE, one history INSERT, one for the breaches.
    Returns the breaches, to publish once committed."""
    if not transaction_ids:
        return []
    txs = schema.transactions
    ids = sorted(set(transaction_ids))
    reached = select(txs.c.id, txs.c.state_at).where(
        txs.c.id.in_(ids),
        txs.c.state.in_(sorted(s.value for s in _ACKNOWLEDGED.sources)),
    )
    if conn.dialect.name != "sqlite":
        reached = reached.with_for_update()
    since = {str(row.id): row.state_at for row in await conn.execute(reached.order_by(txs.c.id))}
    # A late meter answer may have moved one meanwhile: its own acknowledgement reports it.
    moved = await transition_many(
        conn,
        TRANSACTIONS,
        sorted(since),
        _ACKNOWLEDGED.target,
        at=at,
        detail="P2APST acknowledged",
        only_from=sorted(_ACKNOWLEDGED.sources),
    )
    breaches = [
        breach
        for tx_id in sorted(moved)
        if (
            breach := sla.measure(
                Metric.REPORT_TO_P2APST,
                subject_type="transaction",
                subject_id=tx_id,
                started_at=since[tx_id],
                ended_at=at,
                now=at,
            )
        )
        is not None
    ]
    await sla.record(conn, breaches, at)
    return breaches


async def sweep_deliveries(ctx: HubContext, limit: int = 200) -> int:
    """Resend or escalate every delivery whose meter has been silent past its deadline."""
    now = ctx.now()
    async with ctx.store.read() as conn:
        due = [
            int(r.id)
            for r in await conn.execute(
                select(hub_deliveries.c.id)
                .where(hub_deliveries.c.next_check_at <= now)
                .order_by(hub_deliveries.c.next_check_at)
                .limit(limit)
            )
        ]
    for delivery_id in due:
        async with ctx.unit() as (conn, unit):
            row = (
                await conn.execute(
                    select(hub_deliveries).where(
                        hub_deliveries.c.id == delivery_id,
                        hub_deliveries.c.next_check_at <= now,
                    )
                )
            ).first()
            if row is None:
                continue  # answered or handled meanwhile
            await lock_meter(conn, row.meter_number)
            tx = await get_transaction(conn, row.transaction_id)
            if tx.state in FINISHED:
                await conn.execute(
                    update(hub_deliveries)
                    .where(hub_deliveries.c.id == delivery_id)
                    .values(next_check_at=None)
                )
                continue
            if tx.state in _SILENT.sources:
                await sla_check(ctx, conn, unit, Metric.METER_ANSWER, tx.id, tx.state_at, None)
                await set_transaction_state(
                    conn, tx.id, _SILENT.target, at=now, detail=f"attempt {row.attempts}"
                )
            if row.attempts <= ctx.settings.hub.token_resends:
                await _send_attempt(ctx, conn, unit, delivery_id, row.attempts, tx)
            else:
                await escalate(
                    ctx,
                    conn,
                    delivery_id,
                    tx,
                    NO_ANSWER,
                    f"no TOKEN_RESULT after {row.attempts} attempts",
                )
    return len(due)


async def resend_token(ctx: HubContext, transaction_id: str, actor: str, reason: str) -> str:
    """A supervisor's resend: the same token to the meter once more, audited."""
    async with ctx.unit() as (conn, unit):
        await lock_meter(conn, (await get_transaction(conn, transaction_id)).meter_number)
        tx = await get_transaction(conn, transaction_id)
        if tx.state not in RESENDABLE:
            raise Conflict(
                f"transaction {transaction_id} is {tx.state.value}: only a token that was "
                "issued and not yet answered by the meter can be resent"
            )
        row = (
            await conn.execute(
                select(hub_deliveries).where(hub_deliveries.c.transaction_id == transaction_id)
            )
        ).first()
        if row is None:
            await start_delivery(ctx, conn, unit, tx)
        else:
            await conn.execute(
                update(hub_deliveries)
                .where(hub_deliveries.c.id == row.id)
                .values(escalated=False, finished_at=None)
            )
            await _send_attempt(ctx, conn, unit, int(row.id), int(row.attempts), tx)
        await ctx.registry.audit(
            conn, actor, "token.resend", "transaction", transaction_id, {"reason": reason}
        )
    return f"token of transaction {transaction_id} sent to meter {tx.meter_number} again"
