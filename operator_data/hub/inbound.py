"""The inbound side: transport events, taken in batches and applied in one transaction.

Every inbound SMS is logged first (idempotent by the transport's event id), then
classified into one of the five flows by its sender: a registered meter SIM (meter -> hub),
a registered phone or any other valid number texting the short code (customer -> hub);
anything else is logged as rejected. Send results and status reports move outbound
messages along their state machine (set-wise: status_batch.py). Customer commands need
PIN checks and may buy, so they are logged here and acted on afterwards, one by one (see
customer.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import Frame, FrameError, TokenResult
from gateway.msisdn import MsisdnError, normalise
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    ModemStateChanged,
    SendResult,
    TransportEvent,
)
from operator_data.commands import mask_secrets
from operator_data.hub.charging import charge
from operator_data.hub.context import HubContext, Unit
from operator_data.hub.meter_frames import handle_frame
from operator_data.hub.meter_link import open_inbound
from operator_data.hub.status_batch import apply_status
from operator_data.hub.token_batch import MeterAnswer, apply_token_results
from operator_data.registry import Identified, SenderCustomer, SenderMeter
from operator_data.store import Flow, MessageState, schema
from operator_data.store.messages import (
    Incoming,
    Message,
    record_inbound,
    record_inbound_many,
    set_message_state,
)

log = logging.getLogger("operator_data.hub.inbound")
M = MessageState


@dataclass(frozen=True, slots=True)
class CustomerCommand:
    """A logged customer SMS still to be acted on; acked once that is done."""

    message: Message
    text: str | bytes
    sender: SenderCustomer | None
    event_id: str


def _printable(text: str) -> str:
    # PostgreSQL text cannot hold NUL; a customer SMS has no business carrying one.
    return text.replace("\x00", "")[:2000]


def _peer(raw: str) -> str | None:
    try:
        return normalise(raw)
    except MsisdnError:
        return None


async def apply_event(
    ctx: HubContext,
    conn: AsyncConnection,
    unit: Unit,
    event: TransportEvent,
    who: Identified | None,
) -> CustomerCommand | None:
    if isinstance(event, InboundSms):
        return await _inbound(ctx, conn, unit, event, who)
    if isinstance(event, SendResult | DeliveryReport):
        await apply_status(ctx, conn, unit, [event])  # a batch of one
    elif isinstance(event, ModemStateChanged):
        log.info("modem %s/%s is %s %s", event.gateway, event.modem, event.status, event.detail)
    return None


async def _inbound(
    ctx: HubContext, conn: AsyncConnection, unit: Unit, event: InboundSms, who: Identified | None
) -> CustomerCommand | None:
    now = ctx.now()
    peer = _peer(event.sender)
    common = {
        "idempotency_key": f"sms:{event.event_id}",
        "peer_msisdn": peer,
        "peer_raw": event.sender[:32],
        "gateway_id": event.gateway or None,
        "modem_id": event.modem or None,
        "at": now,
    }
    sender = who.sender if who is not None else None
    if isinstance(sender, SenderMeter):
        assert who is not None
        message, _ = await record_inbound(
            conn,
            flow=Flow.METER_TO_HUB,
            meter_number=sender.meter_number,
            customer_id=sender.customer_id,
            kind="frame",
            raw_pdu=event.data if event.data is not None else (event.text or "").encode(),
            **common,  # type: ignore[arg-type]
        )
        if message.state is M.RECEIVED:
            await _meter_frame(ctx, conn, unit, event, message, sender, who)
        return None
    text = _text_of(event)
    shown = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
    if peer is None or (event.text is None and not isinstance(sender, SenderCustomer)):
        # Not a number we can answer, or binary from a stranger: flow-less, so refused.
        message, _ = await record_inbound(
            conn,
            flow=Flow.METER_TO_HUB if event.text is None else Flow.CUSTOMER_TO_HUB,
            body=None if event.text is None else _printable(mask_secrets(shown)),
            raw_pdu=event.data,
            **common,  # type: ignore[arg-type]
        )
        if message.state is M.RECEIVED:
            await set_message_state(
                conn, message.id, M.REJECTED, at=now, reject_reason="unknown sender"
            )
        return None
    (command,) = await log_customer_commands(conn, [(event, who)], at=now)
    return command


def _text_of(event: InboundSms) -> str | bytes:
    if event.text is None and event.data is None:
        return ""
    return event.text if event.text is not None else event.data or b""


def is_customer_command(event: InboundSms, who: Identified | None) -> bool:
    """An SMS to act on as a customer's command: from a number we can answer, and text
    (binary only from a registered customer's phone); not from a meter SIM."""
    sender = who.sender if who is not None else None
    if isinstance(sender, SenderMeter) or _peer(event.sender) is None:
        return False
    return event.text is not None or isinstance(sender, SenderCustomer)


async def log_customer_commands(
    conn: AsyncConnection,
    items: Sequence[tuple[InboundSms, Identified | None]],
    *,
    at: datetime,
) -> list[CustomerCommand | None]:
    """Log customers' SMS (each `is_customer_command`) set-wise, their PINs masked; per
    item, the command still to act on, or None for one logged and acted on before (a
    re-delivery) or a twin of an earlier item."""
    incoming = []
    for event, who in items:
        text = _text_of(event)
        shown = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
        sender = who.sender if who is not None else None
        incoming.append(
            Incoming(
                flow=Flow.CUSTOMER_TO_HUB,
                idempotency_key=f"sms:{event.event_id}",
                peer_msisdn=_peer(event.sender),
                peer_raw=event.sender[:32],
                customer_id=sender.customer_id if isinstance(sender, SenderCustomer) else None,
                gateway_id=event.gateway or None,
                modem_id=event.modem or None,
                body=_printable(mask_secrets(shown)),
            )
        )
    logged = await record_inbound_many(conn, incoming, at=at)
    commands: list[CustomerCommand | None] = []
    for (event, who), (message, created) in zip(items, logged, strict=True):
        sender = who.sender if who is not None else None
        if created or (message.state is M.RECEIVED and not _twin(commands, message)):
            customer = sender if isinstance(sender, SenderCustomer) else None
            commands.append(CustomerCommand(message, _text_of(event), customer, event.event_id))
        else:
            commands.append(None)
    return commands


def _twin(commands: Sequence[CustomerCommand | None], message: Message) -> bool:
    return any(c is not None and c.message.id == message.id for c in commands)


async def _meter_frame(
    ctx: HubContext,
    conn: AsyncConnection,
    unit: Unit,
    event: InboundSms,
    message: Message,
    sender: SenderMeter,
    who: Identified,
) -> None:
    """One meter frame, event by event (the batch's set-wise pass is meter_batch.py)."""
    now = ctx.now()
    if who.key is None:
        await set_message_state(
            conn, message.id, M.REJECTED, at=now, reject_reason=who.key_problem or "no key"
        )
        return
    payload: bytes | str = event.data if event.data is not None else (event.text or "")
    try:
        frame = await open_inbound(conn, ctx.registry, who.key, payload)
    except FrameError as error:
        log.warning("frame from meter %s rejected: %s", sender.meter_number, error)
        await set_message_state(
            conn, message.id, M.REJECTED, at=now, reject_reason=f"frame: {error}"
        )
        return
    await conn.execute(
        update(schema.messages)
        .where(schema.messages.c.id == message.id)
        .values(kind=frame.header.type.name)
    )
    await act_on_frame(ctx, conn, unit, event, message, sender, frame)


async def act_on_frame(
    ctx: HubContext,
    conn: AsyncConnection,
    unit: Unit,
    event: InboundSms,
    message: Message,
    sender: SenderMeter,
    frame: Frame,
) -> None:
    """Act on an authentic frame whose message is logged in state `received`."""
    assert frame.message is not None
    if isinstance(frame.message, TokenResult):  # a batch of one
        answer = MeterAnswer(message, sender.meter_number, frame.message, event.received_at)
        await apply_token_results(ctx, conn, unit, [answer])
        return
    note = await handle_frame(
        ctx,
        conn,
        unit,
        message,
        sender.meter_number,
        sender.customer_id,
        frame.message,
        event.received_at,
    )
    await set_message_state(conn, message.id, M.PROCESSED, at=ctx.now(), detail=note[:500])
    await charge(ctx, conn, message.id)
