"""The message log: every SMS in or out, with its state history and idempotency key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, String, case, insert, literal, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store import schema
from operator_data.store.bulk import insert_many, insert_returning
from operator_data.store.chunks import chunks
from operator_data.store.once import insert_once, upsert
from operator_data.store.outbox import mark_queued
from operator_data.store.states import (
    CHARGEABLE_MESSAGE_STATES,
    Direction,
    Flow,
    MessageState,
)
from operator_data.store.transitions import MESSAGES, NotFound, start, transition
from operator_data.store.types import UTCDateTime, new_ulid, utcnow

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


async def _log_once(
    conn: AsyncConnection,
    idempotency_key: str,
    state: MessageState,
    when: datetime,
    **values: Any,
) -> tuple[Message, bool]:
    """Writes a message row in its first state, once per idempotency key. Returns
    (the earlier message, False) when the key is known, else (the new message, True).
    The new case, by far the common one, costs the INSERT and the history row only."""
    row: dict[str, Any] = dict.fromkeys(_MESSAGE_COLUMNS) | values
    row.update(
        id=new_ulid(when),
        state=state.value,
        state_at=when,
        retries=0,
        idempotency_key=idempotency_key,
        created_at=when,
    )
    if not await insert_once(conn, schema.messages, row, key=[schema.messages.c.idempotency_key]):
        existing = await find_by_idempotency_key(conn, idempotency_key)
        if existing is None:  # the key's row went between the two statements
            raise NotFound(f"message {idempotency_key!r} neither inserted nor found")
        return existing, False
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


@dataclass(frozen=True, slots=True)
class Incoming:
    """One inbound SMS for `record_inbound_many` (the arguments of `record_inbound`)."""

    flow: Flow
    idempotency_key: str
    peer_msisdn: str | None
    peer_raw: str | None = None
    customer_id: str | None = None
    gateway_id: str | None = None
    modem_id: str | None = None
    body: str | None = None
    raw_pdu: bytes | None = None


async def record_inbound_many(
    conn: AsyncConnection, items: Sequence[Incoming], *, at: datetime
) -> list[tuple[Message, bool]]:
    """Log inbound SMS in state `received`, set-wise: one read of the keys logged before
    (re-deliveries: each gets its first message, created=False) and one multi-row INSERT
    each for the new messages and their first state stamps. A key twice in `items` is
    logged once; the twin gets that message, created=False. One (message, created) per
    item, in order. A key another writer logs at the same moment is that writer's: its
    message is returned, created=False."""
    for item in items:
        if item.flow not in _INBOUND_FLOWS:
            raise ValueError(f"flow {item.flow} is not an inbound flow")
    known = await _logged(conn, sorted({item.idempotency_key for item in items}))
    stamp = at.astimezone(UTC)
    fresh: list[dict[str, Any]] = []
    out: list[tuple[Message, bool]] = []
    for item in items:
        logged = known.get(item.idempotency_key)
        if logged is not None:
            out.append((logged, False))
            continue
        row: dict[str, Any] = dict.fromkeys(_MESSAGE_COLUMNS) | {
            "id": new_ulid(at),
            "direction": Direction.IN.value,
            "flow": item.flow.value,
            "peer_msisdn": item.peer_msisdn,
            "peer_raw": item.peer_raw,
            "customer_id": item.customer_id,
            "gateway_id": item.gateway_id,
            "modem_id": item.modem_id,
            "body": item.body,
            "raw_pdu": item.raw_pdu,
            "state": MessageState.RECEIVED.value,
            "state_at": at,
            "retries": 0,
            "idempotency_key": item.idempotency_key,
            "created_at": at,
        }
        fresh.append(row)
        # The row as it reads back (timestamps in UTC), without reading it back.
        message = Message.from_mapping(row | {"state_at": stamp, "created_at": stamp})
        known[item.idempotency_key] = message
        out.append((message, True))
    # ON CONFLICT DO NOTHING: another worker handed the same event (a re-delivery) may log
    # it at this very moment; its row wins and this one is left out, not an error.
    written = {
        str(message_id)
        for (message_id,) in await insert_returning(
            conn,
            schema.messages,
            fresh,
            returning=[schema.messages.c.id],
            skip_conflicts_on=[schema.messages.c.idempotency_key],
        )
    }
    await insert_many(
        conn,
        schema.message_states,
        [
            {"message_id": r["id"], "state": MessageState.RECEIVED.value, "at": at, "detail": None}
            for r in fresh
            if r["id"] in written
        ],
    )
    lost = sorted({r["idempotency_key"] for r in fresh if r["id"] not in written})
    if not lost:
        return out
    theirs = await _logged(conn, lost)
    unwritten = {r["id"] for r in fresh if r["id"] not in written}
    return [
        (theirs[message.idempotency_key], False) if message.id in unwritten else (message, created)
        for message, created in out
    ]


async def _logged(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Message]:
    """The messages logged under `keys`, by key (one IN list per chunk)."""
    found: dict[str, Message] = {}
    for chunk in chunks(keys):
        rows = await conn.execute(
            select(schema.messages).where(schema.messages.c.idempotency_key.in_(chunk))
        )
        found.update({str(row.idempotency_key): Message.from_row(row) for row in rows})
    return found


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


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One outbound SMS for `enqueue_outbound_many` (the arguments of `enqueue_outbound`)."""

    flow: Flow
    idempotency_key: str
    destination: str
    payload: bytes
    meter_number: str | None = None
    customer_id: str | None = None
    kind: str | None = None
    body: str | None = None
    priority: int = 100
    correlation_id: str | None = None
    in_reply_to: str | None = None
    transaction_id: str | None = None


async def enqueue_outbound_many(
    conn: AsyncConnection, items: Sequence[Outgoing], *, at: datetime
) -> list[str]:
    """Log outbound SMS (state `queued`) and put them in the outbox, set-wise: one
    multi-row INSERT each for messages (ON CONFLICT DO NOTHING on the idempotency key),
    their first state stamps and outbox rows. A key logged before is left as it is, with
    its outbox row. Returns the new messages' ids, in order."""
    if not items:
        return []
    messages: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    for item in items:
        if item.flow not in (Flow.HUB_TO_CUSTOMER, Flow.HUB_TO_METER):
            raise ValueError(f"flow {item.flow} is not an outbound flow of the hub")
        message_id = new_ulid(at)
        messages.append(
            dict.fromkeys(_MESSAGE_COLUMNS)
            | {
                "id": message_id,
                "direction": Direction.OUT.value,
                "flow": item.flow.value,
                "peer_msisdn": item.destination,
                "peer_raw": item.destination,
                "meter_number": item.meter_number,
                "customer_id": item.customer_id,
                "kind": item.kind,
                "body": item.body,
                "state": MessageState.QUEUED.value,
                "state_at": at,
                "retries": 0,
                "idempotency_key": item.idempotency_key,
                "correlation_id": item.correlation_id,
                "in_reply_to": item.in_reply_to,
                "transaction_id": item.transaction_id,
                "created_at": at,
            }
        )
        states.append(
            {"message_id": message_id, "state": MessageState.QUEUED.value, "at": at, "detail": None}
        )
        outbox.append(
            {
                "message_id": message_id,
                "destination": item.destination,
                "payload": item.payload,
                "gateway_hint": None,
                "priority": item.priority,
                "available_at": at,
                "attempts": 0,
                "created_at": at,
            }
        )
    written = await insert_returning(
        conn,
        schema.messages,
        messages,
        returning=[schema.messages.c.id],
        skip_conflicts_on=[schema.messages.c.idempotency_key],
    )
    fresh = {str(message_id) for (message_id,) in written}
    await insert_many(conn, schema.message_states, [r for r in states if r["message_id"] in fresh])
    await insert_many(conn, schema.outbox, [r for r in outbox if r["message_id"] in fresh])
    if fresh:
        mark_queued(conn)
    return [row["id"] for row in messages if row["id"] in fresh]


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


async def charge_if_carried(
    conn: AsyncConnection,
    message_id: str,
    *,
    price_version: str,
    prices_idr: Mapping[Flow, int],
    at: datetime,
) -> bool:
    """Charge one message if it was carried (see `charge_carried`). True if this call
    charged it."""
    charged = await charge_carried(
        conn, [message_id], price_version=price_version, prices_idr=prices_idr, at=at
    )
    return charged == 1


async def charge_carried(
    conn: AsyncConnection,
    message_ids: Sequence[str],
    *,
    price_version: str,
    prices_idr: Mapping[Flow, int],
    at: datetime,
) -> int:
    """Write the cost-ledger rows of the messages carried successfully (sent, delivered or
    processed) at their flow's price; failed ones and retries never are. One statement
    whatever the number of messages, without reading them first: each ledger row is made
    from its message row (`INSERT ... SELECT`) when it is chargeable and has a customer,
    once (`ON CONFLICT DO NOTHING`). Returns how many this call charged."""
    if not message_ids:
        return 0
    m, ledger = schema.messages, schema.cost_ledger
    if any(amount < 0 for amount in prices_idr.values()):
        raise ValueError("prices must not be negative")
    amount = case(
        {flow.value: literal(price, BigInteger) for flow, price in prices_idr.items()},
        value=m.c.flow,
        else_=literal(0, BigInteger),
    )
    chargeable = select(
        m.c.id,
        m.c.customer_id,
        m.c.flow,
        literal(price_version, String),
        amount,
        literal(at, UTCDateTime),
    ).where(
        m.c.id.in_(list(message_ids)),
        m.c.customer_id.is_not(None),
        m.c.state.in_([state.value for state in CHARGEABLE_MESSAGE_STATES]),
    )
    columns = ["message_id", "customer_id", "flow", "price_version", "amount_idr", "charged_at"]
    result = await conn.execute(
        upsert(conn, ledger)
        .from_select(columns, chargeable)
        .on_conflict_do_nothing(index_elements=[ledger.c.message_id])
    )
    return int(result.rowcount)


async def link_customer(conn: AsyncConnection, message_id: str, customer_id: str) -> None:
    """Attach the identified customer to a logged message (after sender lookup)."""
    await conn.execute(
        update(schema.messages)
        .where(schema.messages.c.id == message_id)
        .values(customer_id=customer_id)
    )
