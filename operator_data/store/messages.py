"""The message log: every SMS in or out, with its state history and idempotency key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store import schema
from operator_data.store.outbox import mark_queued
from operator_data.store.states import (
    CHARGEABLE_MESSAGE_STATES,
    Direction,
    Flow,
    MessageState,
)
from operator_data.store.transitions import MESSAGES, NotFound, start, transition
from operator_data.store.types import new_ulid, utcnow

_INBOUND_FLOWS = frozenset({Flow.METER_TO_HUB, Flow.CUSTOMER_TO_HUB, Flow.METER_TO_CUSTOMER})


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    direction: Direction
    flow: Flow
    peer_msisdn: str | None
    peer_raw: str | None
    meter_number: str | None
    customer_id: str | None
    gateway_id: str | None
    modem_id: str | None
    kind: str | None
    body: str | None
    raw_pdu: bytes | None
    state: MessageState
    state_at: datetime
    retries: int
    reject_reason: str | None
    idempotency_key: str
    correlation_id: str | None
    in_reply_to: str | None
    transaction_id: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Message:
        return cls.from_mapping(row._mapping)

    @classmethod
    def from_mapping(cls, m: Mapping[Any, Any]) -> Message:
        return cls(
            id=m["id"],
            direction=Direction(m["direction"]),
            flow=Flow(m["flow"]),
            peer_msisdn=m["peer_msisdn"],
            peer_raw=m["peer_raw"],
            meter_number=m["meter_number"],
            customer_id=m["customer_id"],
            gateway_id=m["gateway_id"],
            modem_id=m["modem_id"],
            kind=m["kind"],
            body=m["body"],
            raw_pdu=m["raw_pdu"],
            state=MessageState(m["state"]),
            state_at=m["state_at"],
            retries=m["retries"],
            reject_reason=m["reject_reason"],
            idempotency_key=m["idempotency_key"],
            correlation_id=m["correlation_id"],
            in_reply_to=m["in_reply_to"],
            transaction_id=m["transaction_id"],
            created_at=m["created_at"],
        )


async def get_message(conn: AsyncConnection, message_id: str) -> Message:
    row = (
        await conn.execute(select(schema.messages).where(schema.messages.c.id == message_id))
    ).first()
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    return Message.from_row(row)


async def find_by_idempotency_key(conn: AsyncConnection, key: str) -> Message | None:
    row = (
        await conn.execute(select(schema.messages).where(schema.messages.c.idempotency_key == key))
    ).first()
    return None if row is None else Message.from_row(row)


async def _insert_once(conn: AsyncConnection, key: str, **values: Any) -> Message | None:
    """Insert the message row unless a concurrent writer got there first with the same
    idempotency key; then return that writer's message. On PostgreSQL a savepoint keeps
    our transaction usable after the unique violation; SQLite only undoes the statement."""
    try:
        if conn.dialect.name == "postgresql":
            async with conn.begin_nested():
                await conn.execute(insert(schema.messages).values(**values))
        else:
            await conn.execute(insert(schema.messages).values(**values))
    except IntegrityError:
        existing = await find_by_idempotency_key(conn, key)
        if existing is None:
            raise
        return existing
    return None


async def _log_once(
    conn: AsyncConnection,
    idempotency_key: str,
    state: MessageState,
    when: datetime,
    **values: Any,
) -> tuple[Message, bool]:
    """Writes a message row in its first state, once per idempotency key. Returns
    (the earlier message, False) when the key is known, else (the new message, True)."""
    existing = await find_by_idempotency_key(conn, idempotency_key)
    if existing is not None:
        return existing, False
    row: dict[str, Any] = dict.fromkeys(_MESSAGE_COLUMNS) | values
    row.update(
        id=new_ulid(when),
        state=state.value,
        state_at=when,
        retries=0,
        idempotency_key=idempotency_key,
        created_at=when,
    )
    winner = await _insert_once(conn, idempotency_key, **row)
    if winner is not None:
        return winner, False
    await start(conn, MESSAGES, row["id"], state, at=when)
    # The row as it reads back (timestamps come back in UTC), without reading it back.
    stamp = when.astimezone(UTC)
    return Message.from_mapping(row | {"state_at": stamp, "created_at": stamp}), True


_MESSAGE_COLUMNS = tuple(column.name for column in schema.messages.c)


async def record_inbound(
    conn: AsyncConnection,
    *,
    flow: Flow,
    idempotency_key: str,
    peer_msisdn: str | None,
    peer_raw: str | None = None,
    meter_number: str | None = None,
    customer_id: str | None = None,
    gateway_id: str | None = None,
    modem_id: str | None = None,
    kind: str | None = None,
    body: str | None = None,
    raw_pdu: bytes | None = None,
    correlation_id: str | None = None,
    transaction_id: str | None = None,
    at: datetime | None = None,
) -> tuple[Message, bool]:
    """Log an inbound SMS in state `received`. Returns (message, created); a second call
    with the same idempotency key (a re-delivery) returns the first message, created=False.
    """
    if flow not in _INBOUND_FLOWS:
        raise ValueError(f"flow {flow} is not an inbound flow")
    when = at or utcnow()
    return await _log_once(
        conn,
        idempotency_key,
        MessageState.RECEIVED,
        when,
        direction=Direction.IN.value,
        flow=flow.value,
        peer_msisdn=peer_msisdn,
        peer_raw=peer_raw,
        meter_number=meter_number,
        customer_id=customer_id,
        gateway_id=gateway_id,
        modem_id=modem_id,
        kind=kind,
        body=body,
        raw_pdu=raw_pdu,
        correlation_id=correlation_id,
        transaction_id=transaction_id,
    )


async def enqueue_outbound(
    conn: AsyncConnection,
    *,
    flow: Flow,
    idempotency_key: str,
    destination: str,
    payload: bytes,
    meter_number: str | None = None,
    customer_id: str | None = None,
    kind: str | None = None,
    body: str | None = None,
    gateway_hint: str | None = None,
    priority: int = 100,
    correlation_id: str | None = None,
    in_reply_to: str | None = None,
    transaction_id: str | None = None,
    available_at: datetime | None = None,
    at: datetime | None = None,
) -> tuple[Message, bool]:
    """Log an outbound SMS (state `queued`) and put it in the outbox, in the caller's
    transaction. Idempotent on `idempotency_key`: returns (message, created)."""
    if flow not in (Flow.HUB_TO_CUSTOMER, Flow.HUB_TO_METER):
        raise ValueError(f"flow {flow} is not an outbound flow of the hub")
    when = at or utcnow()
    message, created = await _log_once(
        conn,
        idempotency_key,
        MessageState.QUEUED,
        when,
        direction=Direction.OUT.value,
        flow=flow.value,
        peer_msisdn=destination,
        peer_raw=destination,
        meter_number=meter_number,
        customer_id=customer_id,
        kind=kind,
        body=body,
        correlation_id=correlation_id,
        in_reply_to=in_reply_to,
        transaction_id=transaction_id,
    )
    if not created:
        return message, False
    await conn.execute(
        insert(schema.outbox).values(
            message_id=message.id,
            destination=destination,
            payload=payload,
            gateway_hint=gateway_hint,
            priority=priority,
            available_at=available_at or when,
            attempts=0,
            created_at=when,
        )
    )
    mark_queued(conn)
    return message, True


async def set_message_state(
    conn: AsyncConnection,
    message_id: str,
    target: MessageState,
    *,
    at: datetime | None = None,
    detail: str | None = None,
    reject_reason: str | None = None,
    gateway_id: str | None = None,
    modem_id: str | None = None,
    raw_pdu: bytes | None = None,
) -> MessageState:
    """Move a message along the message state machine; returns the state it left.

    submitted -> queued counts a retry. Raises IllegalTransition / NotFound."""
    extra: dict[str, Any] = {}
    if reject_reason is not None:
        extra["reject_reason"] = reject_reason
    if gateway_id is not None:
        extra["gateway_id"] = gateway_id
    if modem_id is not None:
        extra["modem_id"] = modem_id
    if raw_pdu is not None:
        extra["raw_pdu"] = raw_pdu
    if target is MessageState.QUEUED:
        extra["retries"] = schema.messages.c.retries + 1
    return await transition(
        conn, MESSAGES, message_id, target, at=at, detail=detail, extra_values=extra
    )


class NotChargeable(ValueError):
    """The message has not been carried successfully, so it must not be charged."""


async def charge_message(
    conn: AsyncConnection,
    message_id: str,
    *,
    price_version: str,
    amount_idr: int,
    at: datetime | None = None,
    message: Message | None = None,
) -> bool:
    """Write the cost-ledger row of a successfully carried message (sent, delivered or
    processed). Returns False if it was already charged (retries are charged once).
    `message`: the message as just read in this transaction, to spare reading it again."""
    if message is None or message.id != message_id:
        message = await get_message(conn, message_id)
    if message.state not in CHARGEABLE_MESSAGE_STATES:
        raise NotChargeable(f"message {message_id} is {message.state}: not chargeable")
    if amount_idr < 0:
        raise ValueError("amount_idr must not be negative")
    ledger = schema.cost_ledger
    # One statement, and no unique-key error for two workers charging at once (the
    # ledger is unique on message_id): the second insert does nothing.
    upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    result = await conn.execute(
        upsert(ledger)
        .values(
            message_id=message_id,
            customer_id=message.customer_id,
            flow=message.flow.value,
            price_version=price_version,
            amount_idr=amount_idr,
            charged_at=at or utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[ledger.c.message_id])
    )
    return result.rowcount == 1


async def link_customer(conn: AsyncConnection, message_id: str, customer_id: str) -> None:
    """Attach the identified customer to a logged message (after sender lookup)."""
    await conn.execute(
        update(schema.messages)
        .where(schema.messages.c.id == message_id)
        .values(customer_id=customer_id)
    )
