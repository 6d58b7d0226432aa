"""Putting SMS in the outbox (message log + outbox row, in the caller's transaction), and
turning an outbox row back into an `OutboundSms` for the transport.

A text that carries a token (the receipt) is stored in the log masked, and its outbox
payload is sealed under the master key (AAD = the message's idempotency key), so the
token is never at rest in clear.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import Message as FrameMessage
from firmware_protocol.frames import spec_for
from gateway.transport import OutboundSms
from operator_data.crypto.master_key import MasterKey
from operator_data.crypto.sealing import open_sealed, seal
from operator_data.hub.context import HubContext
from operator_data.hub.meter_link import seal_outbound
from operator_data.registry import CommsKey
from operator_data.store import Flow, schema
from operator_data.store.messages import Message, enqueue_outbound, find_by_idempotency_key

SEALED = b"\x00sealed\x00"

PRIORITY_TOKEN = 10
PRIORITY_RECEIPT = 20
PRIORITY_REPLY = 50
PRIORITY_QUERY = 80
PRIORITY_NOTICE = 100


async def queue_text(
    ctx: HubContext,
    conn: AsyncConnection,
    *,
    idempotency_key: str,
    to: str,
    text: str,
    logged_body: str | None = None,
    secret: bool = False,
    kind: str,
    customer_id: str | None = None,
    meter_number: str | None = None,
    in_reply_to: str | None = None,
    transaction_id: str | None = None,
    correlation_id: str | None = None,
    priority: int = PRIORITY_REPLY,
    flow: Flow = Flow.HUB_TO_CUSTOMER,
) -> Message:
    """A text SMS to a customer. `logged_body` is what the log keeps (defaults to `text`);
    `secret=True` seals the payload. `flow=METER_TO_CUSTOMER` logs a notice the hub relays
    on a meter's behalf."""
    payload = text.encode("utf-8")
    if secret:
        payload = SEALED + seal(ctx.master, payload, aad=idempotency_key)
    message, created = await enqueue_outbound(
        conn,
        flow=Flow.HUB_TO_CUSTOMER,
        idempotency_key=idempotency_key,
        destination=to,
        payload=payload,
        customer_id=customer_id,
        meter_number=meter_number,
        kind=kind,
        body=logged_body if logged_body is not None else text,
        priority=priority,
        in_reply_to=in_reply_to,
        transaction_id=transaction_id,
        correlation_id=correlation_id,
        at=ctx.now(),
    )
    if created and flow is not Flow.HUB_TO_CUSTOMER:
        await conn.execute(
            update(schema.messages)
            .where(schema.messages.c.id == message.id)
            .values(flow=flow.value)
        )
    return message


async def meter_sim_msisdn(conn: AsyncConnection, meter_number: str) -> str | None:
    value = await conn.scalar(
        select(schema.sims.c.msisdn).where(schema.sims.c.meter_number == meter_number)
    )
    return None if value is None else str(value)


async def queue_frame(
    ctx: HubContext,
    conn: AsyncConnection,
    key: CommsKey,
    message: FrameMessage,
    *,
    idempotency_key: str,
    to: str,
    customer_id: str | None = None,
    transaction_id: str | None = None,
    in_reply_to: str | None = None,
    priority: int = PRIORITY_QUERY,
) -> tuple[Message, int | None]:
    """A frame to a meter's SIM. Returns the logged message and the frame counter used
    (None when the idempotency key was queued before: nothing new is sealed)."""
    existing = await find_by_idempotency_key(conn, idempotency_key)
    if existing is not None:
        return existing, None
    frame, counter = await seal_outbound(conn, ctx.registry, key, message)
    kind = spec_for(message).message_type.name
    logged, _ = await enqueue_outbound(
        conn,
        flow=Flow.HUB_TO_METER,
        idempotency_key=idempotency_key,
        destination=to,
        payload=frame,
        meter_number=key.meter_number,
        customer_id=customer_id,
        kind=kind,
        body=None,
        priority=priority,
        correlation_id=f"frame:{key.meter_number}:{counter}",
        in_reply_to=in_reply_to,
        transaction_id=transaction_id,
        at=ctx.now(),
    )
    return logged, counter


def outbound_sms(
    master: MasterKey, *, message_id: str, idempotency_key: str, flow: Flow, to: str, payload: bytes
) -> OutboundSms:
    if flow is Flow.HUB_TO_METER:
        return OutboundSms(message_id=message_id, to=to, data=payload)
    if payload.startswith(SEALED):
        payload = open_sealed(master, payload[len(SEALED) :], aad=idempotency_key)
    return OutboundSms(message_id=message_id, to=to, text=payload.decode("utf-8"))
