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

from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import Frame, Telemetry, TokenResult
from gateway.msisdn import MsisdnError, normalise
from gateway.transport import (
    InboundSms,
    ModemStateChanged,
    TransportEvent,
)
from operator_data.commands import mask_secrets
from operator_data.hub.charging import charge
from operator_data.hub.context import HubContext, Unit
from operator_data.hub.meter_frames import handle_frame
from operator_data.registry import Identified, SenderCustomer, SenderMeter
from operator_data.store import Flow, MessageState
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
    """A customer SMS as it is logged: PINs masked, after the NULs go (PostgreSQL text
    cannot hold NUL; dropping one after masking could join digits into a PIN in clear)."""
    return mask_secrets(text.replace("\x00", ""))[:2000]


def _peer(raw: str) -> str | None:
    try:
        return normalise(raw)
    except MsisdnError:
        return None


async def apply_event(
    ctx: HubContext,
    conn: AsyncConnection,
    event: TransportEvent,
    who: Identified | None,
) -> CustomerCommand | None:
    """What a batch's set-wise passes leave (meter frames: meter_batch.py; send outcomes:
    status_batch.py; customer SMS: `log_customer_commands`): an SMS from a sender the hub
    cannot answer, logged as rejected; a modem's state change, logged."""
    if isinstance(event, InboundSms):
        return await _inbound(ctx, conn, event, who)
    if isinstance(event, ModemStateChanged):
        log.info("modem %s/%s is %s %s", event.gateway, event.modem, event.status, event.detail)
    return None


async def _inbound(
    ctx: HubContext, conn: AsyncConnection, event: InboundSms, who: Identified | None
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
        # Meter frames have one path, set-wise, whatever the batch's size.
        raise ValueError(f"event {event.event_id}: meter frames go through meter_batch")
    text = _text_of(event)
    shown = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
    if peer is None or (event.text is None and not isinstance(sender, SenderCustomer)):
        # Not a number we can answer, or binary from a stranger: flow-less, so refused.
        message, _ = await record_inbound(
            conn,
            flow=Flow.METER_TO_HUB if event.text is None else Flow.CUSTOMER_TO_HUB,
            body=None if event.text is None else _printable(shown),
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
                body=_printable(shown),
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


async def act_on_frame(
    ctx: HubContext,
    conn: AsyncConnection,
    unit: Unit,
    event: InboundSms,
    message: Message,
    sender: SenderMeter,
    frame: Frame,
) -> None:
    """Act on an authentic frame whose message is logged in state `received`: one of the
    rarer kinds (alarms, balance replies, ...). Telemetry is finished by meter_batch.py and
    TOKEN_RESULT answers by token_batch.py, set-wise."""
    assert frame.message is not None
    if isinstance(frame.message, Telemetry | TokenResult):
        raise ValueError(f"message {message.id}: {type(frame.message).__name__} is batched")
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
