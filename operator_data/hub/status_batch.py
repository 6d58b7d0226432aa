"""Send results and status reports, set-wise: what the network says about outbound SMS.

A batch's outcomes are applied with a fixed number of statements whatever its size, as
`meter_batch.py` does for meter frames: one locking read of the messages they name, the
decision in memory (`decide`: no I/O, the messages' states walked through the events in
the batch's order), then one statement each for the outbox rows they settle, the
messages' new states, their state stamps, the cost-ledger rows and, for token frames the
network took, the transactions' TOKEN_SENT moves with theirs. A single event is a batch
of one: there is no other implementation.

Safety: the messages (and then the transactions) are read `FOR UPDATE` in key order, so
two workers applying overlapping batches take turns instead of deadlocking, and each reads
what the other committed; on SQLite the write transaction excludes every other writer. The
decision therefore holds when the writes run; their `WHERE state = <state read>` only
keeps them honest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.transport import DeliveryReport, SendResult, SendStatus, TransportEvent
from operator_data.hub.charging import charge_many
from operator_data.hub.context import HubContext, Unit
from operator_data.hub.lifecycle import PurchaseEvent, step
from operator_data.hub.sla import Metric, SlaBreach
from operator_data.store import Flow, MessageState, TransactionState, schema
from operator_data.store.bulk import insert_many

log = logging.getLogger("operator_data.hub.inbound")
M = MessageState
T = TransactionState
StatusEvent = SendResult | DeliveryReport
#: When an event happened, given its gateway's time and the start of the stage it ends.
EventTime = Callable[[datetime, datetime], datetime]
_CHUNK = 500  # keys per IN (...) list: well under every backend's bound-parameter limit
#: Where a token frame's transaction may move to TOKEN_SENT from (a resend after a
#: timeout goes out again; any later state means the meter answered first).
_TOKEN_SENT = step(PurchaseEvent.TOKEN_SENT)


@dataclass(frozen=True, slots=True)
class Outbound:
    """What deciding needs of an outbound message."""

    id: str
    state: MessageState
    state_at: datetime
    flow: Flow
    transaction_id: str | None

    @property
    def carries_token(self) -> bool:
        """A token frame to a meter: its transaction moves when the network takes it."""
        return self.flow is Flow.HUB_TO_METER and self.transaction_id is not None


@dataclass(frozen=True, slots=True)
class Move:
    """One step of a message along its state machine (a history row each)."""

    message_id: str
    target: MessageState
    at: datetime
    detail: str | None = None


@dataclass(slots=True)
class StatusEffects:
    """What a batch of outcomes does, decided without I/O."""

    moves: list[Move] = field(default_factory=list)
    #: Each moved message as it ends up: (state it was read in, final state, when, gateway
    #: and modem that sent it when the outcome names them).
    finals: dict[str, tuple[MessageState, Move, str | None, str | None]] = field(
        default_factory=dict
    )
    settled: list[str] = field(default_factory=list)  # outbox rows answered for
    charged: list[str] = field(default_factory=list)  # carried: a ledger row each
    tokens_sent: dict[str, datetime] = field(default_factory=dict)  # transaction -> when
    unknown: list[StatusEvent] = field(default_factory=list)  # name no message we know


class _Walk:
    """The messages' states as the batch's events move them, in memory."""

    def __init__(self, messages: Mapping[str, Outbound], effects: StatusEffects) -> None:
        self.read = dict(messages)
        self.now = dict(messages)
        self.effects = effects
        self.gateways: dict[str, tuple[str | None, str | None]] = {}

    def move(
        self,
        message: Outbound,
        target: MessageState,
        at: datetime,
        *,
        detail: str | None = None,
        gateway: str | None = None,
        modem: str | None = None,
    ) -> None:
        step = Move(message.id, target, at, detail)
        self.effects.moves.append(step)
        self.now[message.id] = Outbound(
            message.id, target, at, message.flow, message.transaction_id
        )
        # The gateway and modem that sent it, once an outcome names them (kept through
        # later moves in the same batch).
        known_gateway, known_modem = self.gateways.get(message.id, (None, None))
        gateway, modem = gateway or known_gateway, modem or known_modem
        self.gateways[message.id] = (gateway, modem)
        self.effects.finals[message.id] = (self.read[message.id].state, step, gateway, modem)

    def token_sent(self, message: Outbound, at: datetime) -> None:
        if message.carries_token:
            assert message.transaction_id is not None
            self.effects.tokens_sent.setdefault(message.transaction_id, at)

    def settle(self, message: Outbound) -> None:
        if message.id not in self.effects.settled:
            self.effects.settled.append(message.id)

    def charge(self, message: Outbound) -> None:
        if message.id not in self.effects.charged:
            self.effects.charged.append(message.id)


def decide(
    messages: Mapping[str, Outbound], events: Sequence[StatusEvent], event_time: EventTime
) -> StatusEffects:
    """The effects of `events`, in order, on `messages` (those they name, as read)."""
    effects = StatusEffects()
    walk = _Walk(messages, effects)
    for event in events:
        message = walk.now.get(event.message_id) if event.message_id is not None else None
        if message is None:
            effects.unknown.append(event)
        elif isinstance(event, SendResult):
            _send_result(walk, message, event, event_time(event.at, message.state_at))
        else:
            _delivery_report(walk, message, event, event_time(event.at, message.state_at))
    return effects


def _send_result(walk: _Walk, message: Outbound, event: SendResult, at: datetime) -> None:
    walk.settle(message)  # answered: the outbox need not offer it again
    if event.status is SendStatus.SENT:
        if message.state in (M.QUEUED, M.SUBMITTED):
            if message.state is M.QUEUED:
                walk.move(message, M.SUBMITTED, at)
            walk.move(message, M.SENT, at, gateway=event.gateway or None, modem=event.modem or None)
            walk.token_sent(message, at)
    elif message.state in (M.QUEUED, M.SUBMITTED, M.SENT):
        walk.move(message, M.FAILED, at, detail=(event.error or "send failed")[:500])


def _delivery_report(walk: _Walk, message: Outbound, event: DeliveryReport, at: datetime) -> None:
    if event.delivered or event.final:
        walk.settle(message)  # the report answers for the send result too
    if event.delivered:
        if message.state is M.SUBMITTED:
            # The report overtook the send result (another worker, a re-delivery): the
            # token frame was sent all the same, so its transaction moves on here.
            walk.move(message, M.SENT, at)
            walk.token_sent(message, at)
        if message.state in (M.SUBMITTED, M.SENT):
            walk.move(message, M.DELIVERED, at)
            # Charged on the handset's (or meter's) confirmed receipt: a failed SMS never.
            walk.charge(message)
    elif event.final and message.state in (M.SUBMITTED, M.SENT):
        walk.move(message, M.FAILED, at, detail=f"status report {event.status:#04x}")


def status_events(events: Iterable[TransportEvent]) -> list[StatusEvent]:
    return [event for event in events if isinstance(event, SendResult | DeliveryReport)]


async def apply_status(
    ctx: HubContext, conn: AsyncConnection, unit: Unit, events: Sequence[StatusEvent]
) -> StatusEffects:
    """Apply a batch's send results and status reports in the caller's transaction. Run it
    before anything else the batch does: its locking read is the batch's first lock."""
    named = sorted({e.message_id for e in events if e.message_id is not None})
    messages = await _lock_messages(conn, named)

    def event_time(at: datetime, after: datetime) -> datetime:
        return ctx.event_time(at, after=after)

    effects = decide(messages, events, event_time)
    for event in effects.unknown:
        if isinstance(event, SendResult):
            log.warning("send result for unknown message %s", event.message_id)
        elif event.message_id is None:
            log.info("status report %s matched no sent message", event.event_id)
    outbox = schema.outbox
    for start in range(0, len(effects.settled), _CHUNK):
        chunk = effects.settled[start : start + _CHUNK]
        await conn.execute(delete(outbox).where(outbox.c.message_id.in_(chunk)))
    await _write_moves(conn, effects)
    if effects.charged:
        await charge_many(ctx, conn, effects.charged)
    if effects.tokens_sent:
        await tokens_sent(ctx, conn, unit, effects.tokens_sent)
    return effects


async def _lock_messages(conn: AsyncConnection, ids: list[str]) -> dict[str, Outbound]:
    m = schema.messages
    found: dict[str, Outbound] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(
            select(m.c.id, m.c.state, m.c.state_at, m.c.flow, m.c.transaction_id)
            .where(m.c.id.in_(ids[start : start + _CHUNK]))
            .order_by(m.c.id)
            .with_for_update()
        )
        for r in rows:
            found[r.id] = Outbound(
                r.id, MessageState(r.state), r.state_at, Flow(r.flow), r.transaction_id
            )
    return found


async def _write_moves(conn: AsyncConnection, effects: StatusEffects) -> None:
    if not effects.finals:
        return
    m = schema.messages
    await conn.execute(
        update(m)
        .where(m.c.id == bindparam("b_id"), m.c.state == bindparam("b_from"))
        .values(
            state=bindparam("b_state"),
            state_at=bindparam("b_at"),
            gateway_id=func.coalesce(bindparam("b_gateway", type_=String), m.c.gateway_id),
            modem_id=func.coalesce(bindparam("b_modem", type_=String), m.c.modem_id),
        ),
        [
            {
                "b_id": message_id,
                "b_from": read.value,
                "b_state": final.target.value,
                "b_at": final.at,
                "b_gateway": gateway,
                "b_modem": modem,
            }
            for message_id, (read, final, gateway, modem) in effects.finals.items()
        ],
    )
    await insert_many(
        conn,
        schema.message_states,
        [
            {"message_id": s.message_id, "state": s.target.value, "at": s.at, "detail": s.detail}
            for s in effects.moves
        ],
    )


async def tokens_sent(
    ctx: HubContext, conn: AsyncConnection, unit: Unit, sent: Mapping[str, datetime]
) -> list[str]:
    """The network took these transactions' token frames (transaction -> when): each still
    waiting for that (TOKEN_ISSUED, or METER_TIMEOUT before a resend) is TOKEN_SENT, the
    rest have moved on (a repeated send result; the meter's answer came first). Set-wise:
    one locking read, one UPDATE, one history INSERT, one INSERT of SLA breaches. Returns
    the transactions moved."""
    txs = schema.transactions
    ids = sorted(sent)
    rows: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        rows.extend(
            await conn.execute(
                select(txs.c.id, txs.c.state, txs.c.state_at)
                .where(txs.c.id.in_(ids[start : start + _CHUNK]))
                .order_by(txs.c.id)
                .with_for_update()
            )
        )
    now = ctx.now()
    moves: list[dict[str, Any]] = []
    breaches: list[SlaBreach] = []
    for r in rows:
        state = TransactionState(r.state)
        if state not in _TOKEN_SENT.sources:
            continue
        at = max(sent[r.id], r.state_at)  # a gateway clock behind ours: not before issue
        moves.append({"b_id": r.id, "b_from": state.value, "b_at": at})
        if state is T.TOKEN_ISSUED:
            breach = ctx.sla.measure(
                Metric.TOKEN_TO_NETWORK,
                subject_type="transaction",
                subject_id=r.id,
                started_at=r.state_at,
                ended_at=at,
                now=now,
            )
            if breach is not None:
                breaches.append(breach)
    if not moves:
        return []
    await conn.execute(
        update(txs)
        .where(txs.c.id == bindparam("b_id"), txs.c.state == bindparam("b_from"))
        .values(state=T.TOKEN_SENT.value, state_at=bindparam("b_at")),
        moves,
    )
    await insert_many(
        conn,
        schema.transaction_states,
        [
            {
                "transaction_id": move["b_id"],
                "state": T.TOKEN_SENT.value,
                "at": move["b_at"],
                "detail": "token SMS sent",
            }
            for move in moves
        ],
    )
    if breaches:
        await ctx.sla.record(conn, breaches, now)

        async def publish() -> None:
            for breach in breaches:
                ctx.sla.publish(breach)

        unit.later(publish)
    return [move["b_id"] for move in moves]
