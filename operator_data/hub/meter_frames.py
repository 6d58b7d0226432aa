"""What the hub does with each authenticated frame from a meter (flow meter -> hub)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import (
    Alarm,
    AlarmKind,
    BalanceReply,
    ConfigAck,
    LoadProfile,
    Message,
    Pong,
    Telemetry,
)
from operator_data.commands.replies import Reply, render
from operator_data.hub.context import HubContext, Unit
from operator_data.hub.formatting import kwh, wib
from operator_data.hub.helpdesk import open_incident
from operator_data.hub.outbound import PRIORITY_NOTICE, PRIORITY_REPLY, queue_text
from operator_data.store import Flow, schema
from operator_data.store.messages import Message as LoggedMessage

log = logging.getLogger("operator_data.hub.meter_frames")

_SECURITY_ALARMS = frozenset({AlarmKind.TAMPER, AlarmKind.COVER_OPEN, AlarmKind.MAGNETIC})
_SEVERITY = {
    AlarmKind.LOW_CREDIT: "info",
    AlarmKind.NO_CREDIT: "warning",
    AlarmKind.TAMPER: "critical",
    AlarmKind.COVER_OPEN: "critical",
    AlarmKind.MAGNETIC: "critical",
    AlarmKind.OVER_POWER: "warning",
    AlarmKind.POWER_FAIL: "warning",
    AlarmKind.POWER_RESTORE: "info",
}


async def handle_frame(
    ctx: HubContext,
    conn: AsyncConnection,
    unit: Unit,
    inbound: LoggedMessage,
    meter_number: str,
    customer_id: str,
    message: Message,
    arrived_at: datetime,
) -> str:
    """Act on one message; returns a note for the message's history."""
    # TOKEN_RESULT is not acted on here: token_batch.py takes a batch's answers together.
    if isinstance(message, Telemetry):
        await _reading(
            conn,
            meter_number,
            message.read_at,
            arrived_at,
            inbound.id,
            credit=str(message.credit_kwh),
            total=str(message.energy_kwh),
            values={
                "request_id": message.request_id,
                "voltage_v": str(message.voltage_v),
                "power_w": message.power_w,
                "status": int(message.status),
                "signal_csq": message.signal_csq,
            },
        )
        return "reading stored"
    if isinstance(message, BalanceReply):
        await _reading(
            conn,
            meter_number,
            message.read_at,
            arrived_at,
            inbound.id,
            credit=str(message.credit_kwh),
            total=str(message.energy_kwh),
            values={"request_id": message.request_id, "kind": "balance"},
        )
        await _answer_balance_request(ctx, conn, meter_number, customer_id, message, inbound)
        return "balance stored"
    if isinstance(message, Alarm):
        return await _alarm(ctx, conn, inbound, meter_number, customer_id, message, arrived_at)
    if isinstance(message, ConfigAck):
        return f"config {message.status.name.lower()} (request {message.request_id})"
    if isinstance(message, Pong):
        drift = (message.meter_time - arrived_at).total_seconds()
        return (
            f"pong: firmware {message.firmware >> 8}.{message.firmware & 0xFF}, drift {drift:.0f}s"
        )
    if isinstance(message, LoadProfile):
        return "load profile received (not stored)"
    return f"{type(message).__name__} ignored"


async def _reading(
    conn: AsyncConnection,
    meter_number: str,
    meter_time: datetime,
    arrived_at: datetime,
    message_id: str,
    *,
    credit: str,
    total: str,
    values: dict[str, object],
) -> None:
    await conn.execute(
        insert(schema.telemetry_readings).values(
            meter_number=meter_number,
            meter_time=meter_time,
            received_at=arrived_at,
            credit_kwh=credit,
            total_kwh=total,
            values=values,
            message_id=message_id,
        )
    )


async def _answer_balance_request(
    ctx: HubContext,
    conn: AsyncConnection,
    meter_number: str,
    customer_id: str,
    reply: BalanceReply,
    inbound: LoggedMessage,
) -> None:
    """A SALDO request asked the meter: send the fresh figure to the phone that asked."""
    msgs = schema.messages
    query = (
        await conn.execute(
            select(msgs.c.in_reply_to).where(
                msgs.c.correlation_id == f"frame:{meter_number}:{reply.request_id}",
                msgs.c.kind == "BALANCE_QUERY",
            )
        )
    ).first()
    if query is None or query.in_reply_to is None:
        return
    asker = await conn.scalar(select(msgs.c.peer_msisdn).where(msgs.c.id == query.in_reply_to))
    if asker is None:
        return
    await queue_text(
        ctx,
        conn,
        idempotency_key=f"balance:{inbound.id}",
        to=str(asker),
        text=render(
            Reply.BALANCE,
            ctx.lang,
            meter=meter_number,
            credit=kwh(reply.credit_kwh),
            at=wib(reply.read_at),
        ),
        kind="balance",
        customer_id=customer_id,
        meter_number=meter_number,
        in_reply_to=query.in_reply_to,
        priority=PRIORITY_REPLY,
    )


async def _alarm(
    ctx: HubContext,
    conn: AsyncConnection,
    inbound: LoggedMessage,
    meter_number: str,
    customer_id: str,
    alarm: Alarm,
    arrived_at: datetime,
) -> str:
    await conn.execute(
        insert(schema.alarms).values(
            meter_number=meter_number,
            code=alarm.kind.name,
            severity=_SEVERITY[alarm.kind],
            meter_time=alarm.occurred_at,
            received_at=arrived_at,
            message_id=inbound.id,
            detail={"credit_kwh": str(alarm.credit_kwh), "status": int(alarm.status)},
        )
    )
    if alarm.kind in _SECURITY_ALARMS:
        await open_incident(
            conn,
            category="tamper",
            subject=f"Meter {meter_number}: {alarm.kind.name} alarm",
            notes=f"meter time {alarm.occurred_at.isoformat()}, status {alarm.status!r}",
            at=arrived_at,
            customer_id=customer_id,
            meter_number=meter_number,
        )
        return f"alarm {alarm.kind.name}: helpdesk item opened"
    if alarm.kind is AlarmKind.LOW_CREDIT:
        return await _low_credit_notice(ctx, conn, inbound, meter_number, customer_id, alarm)
    return f"alarm {alarm.kind.name} stored"


async def _low_credit_notice(
    ctx: HubContext,
    conn: AsyncConnection,
    inbound: LoggedMessage,
    meter_number: str,
    customer_id: str,
    alarm: Alarm,
) -> str:
    """Flow 4 (meter -> customer), relayed by the hub, which honours the opt-out."""
    opted_out = await conn.scalar(
        select(schema.customers.c.opted_out).where(schema.customers.c.customer_id == customer_id)
    )
    if opted_out:
        return "low credit: customer opted out, no notice"
    phones = schema.customer_phones
    numbers = [
        str(n)
        for n in await conn.scalars(
            select(phones.c.msisdn)
            .where(phones.c.customer_id == customer_id)
            .order_by(phones.c.msisdn)
        )
    ]
    text = render(Reply.LOW_CREDIT, ctx.lang, meter=meter_number, credit=kwh(alarm.credit_kwh))
    for number in numbers:
        await queue_text(
            ctx,
            conn,
            idempotency_key=f"notice:{inbound.id}:{number}",
            to=number,
            text=text,
            kind="low-credit",
            customer_id=customer_id,
            meter_number=meter_number,
            correlation_id=inbound.id,
            priority=PRIORITY_NOTICE,
            flow=Flow.METER_TO_CUSTOMER,
        )
    return f"low credit: notice to {len(numbers)} phone(s)"
