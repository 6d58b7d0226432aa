"""The inbound hot path: a batch's meter frames logged, authenticated and stored set-wise.

Meters report far more often than anyone else writes, so their frames do not go through
the per-message helpers (a dozen statements each). Per batch: one read of the idempotency
keys already logged, one locking read of the senders' replay windows, the frames checked
in memory, then one multi-row statement each for messages, their state stamps, readings,
cost-ledger rows and the windows written back. Telemetry (and every refused frame) is
finished here; TOKEN_RESULT answers go on to token_batch.py, set-wise; the rarer frame
types are only logged (state `received`) and then acted on one by one by
`inbound.act_on_frame`, in the batch's order. A single event is a batch of one: there is no
other path for meter frames.

Safety is that of the per-message path: everything is in the batch's transaction; the
meter rows are locked (FOR UPDATE, in meter order) before their windows are read, so two
workers never accept the same counter; a re-delivered event finds its idempotency key and
is not acted on again; a concurrent insert of the same key fails the batch, which the hub
then retries one event at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import Frame, FrameError, ReplayWindow, Telemetry
from gateway.msisdn import MsisdnError, normalise
from gateway.transport import InboundSms
from operator_data.hub.context import HubContext
from operator_data.hub.meter_link import Checked, admit, check_frame, window_of
from operator_data.registry import Identified, SenderMeter
from operator_data.store import Flow, MessageState, schema
from operator_data.store.bulk import insert_many
from operator_data.store.chunks import chunks
from operator_data.store.messages import Message
from operator_data.store.states import Direction
from operator_data.store.transitions import MESSAGES, transition_many
from operator_data.store.types import new_ulid

log = logging.getLogger("operator_data.hub.inbound")
M = MessageState


@dataclass(frozen=True, slots=True)
class FrameToAct:
    """An authentic frame whose message row is logged (`received`) but not yet acted on."""

    message: Message
    sender: SenderMeter
    frame: Frame


@dataclass(slots=True)
class MeterBatch:
    """What the set-wise pass left to act on one frame at a time (the rarer kinds)."""

    to_act: dict[str, FrameToAct] = field(default_factory=dict)  # by event id
    done: set[str] = field(default_factory=set)  # event ids finished (or already logged)


@dataclass(slots=True)
class _Rows:
    messages: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    readings: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)


async def log_meter_frames(
    ctx: HubContext,
    conn: AsyncConnection,
    items: Sequence[tuple[InboundSms, Identified]],
    checked: Mapping[str, Checked] | None = None,
) -> MeterBatch:
    """The set-wise pass over a batch's SMS from meter SIMs, in the caller's transaction."""
    batch = MeterBatch()
    if not items:
        return batch
    known = await _logged_keys(conn, [f"sms:{event.event_id}" for event, _ in items])
    fresh: list[tuple[InboundSms, Identified]] = []
    seen: set[str] = set()
    stranded: list[str] = []
    for event, who in items:
        key = f"sms:{event.event_id}"
        if key in known or event.event_id in seen:
            # Logged before (a re-delivery): acted on then.
            batch.done.add(event.event_id)
            logged = known.get(key)
            if logged is not None and logged[0] == M.RECEIVED.value:
                stranded.append(logged[1])
            continue
        seen.add(event.event_id)
        fresh.append((event, who))
    await _refuse_stranded(conn, sorted(set(stranded)), ctx.now())
    windows = await _lock_windows(
        conn,
        sorted(
            {
                who.sender.meter_number
                for _, who in fresh
                if who.key is not None and isinstance(who.sender, SenderMeter)
            }
        ),
    )
    before = {meter: window.to_bytes() for meter, window in windows.items()}
    now = ctx.now()
    price = ctx.settings.prices.at(now)
    rows = _Rows()
    for event, who in fresh:
        check = (checked or {}).get(event.event_id)
        _one(event, who, check, windows, now, rows, batch, price.version, price.prices_idr)
    await insert_many(conn, schema.messages, rows.messages)
    await insert_many(conn, schema.message_states, rows.states)
    await insert_many(conn, schema.telemetry_readings, rows.readings)
    await insert_many(conn, schema.cost_ledger, rows.charges)
    moved = [
        {"b_meter": meter, "b_rx": window.highest or 0, "b_window": window.to_bytes()}
        for meter, window in windows.items()
        if window.to_bytes() != before[meter]
    ]
    if moved:
        # Before this transaction commits: the counter ledger's inbound ceilings stay above
        # what it accepts, so a restored backup's older windows cannot take these frames
        # again (a durable ledger write only when a meter passes its block).
        keys = {
            who.sender.meter_number: who.key.key
            for _, who in fresh
            if who.key is not None and isinstance(who.sender, SenderMeter)
        }
        await ctx.registry.record_rx_counters(
            {
                meter: (keys[meter], window.highest)
                for meter, window in windows.items()
                if window.highest is not None
                and meter in keys
                and window.to_bytes() != before[meter]
            }
        )
        meters = schema.meters
        await conn.execute(
            update(meters)
            .where(meters.c.meter_number == bindparam("b_meter"))
            .values(rx_counter=bindparam("b_rx"), replay_window=bindparam("b_window")),
            moved,
        )
    return batch


def _one(
    event: InboundSms,
    who: Identified,
    check: Checked | None,
    windows: dict[str, ReplayWindow],
    now: datetime,
    rows: _Rows,
    batch: MeterBatch,
    price_version: str,
    prices: dict[Flow, int],
) -> None:
    sender = who.sender
    assert isinstance(sender, SenderMeter)
    message_id = new_ulid(now)
    row: dict[str, Any] = {
        "id": message_id,
        "direction": Direction.IN.value,
        "flow": Flow.METER_TO_HUB.value,
        "peer_msisdn": _peer(event.sender),
        "peer_raw": event.sender[:32],
        "meter_number": sender.meter_number,
        "customer_id": sender.customer_id,
        "gateway_id": event.gateway or None,
        "modem_id": event.modem or None,
        "kind": "frame",
        "body": None,
        "raw_pdu": event.data if event.data is not None else (event.text or "").encode(),
        "state": M.RECEIVED.value,
        "state_at": now,
        "retries": 0,
        "reject_reason": None,
        "idempotency_key": f"sms:{event.event_id}",
        "correlation_id": None,
        "in_reply_to": None,
        "transaction_id": None,
        "created_at": now,
    }
    rows.messages.append(row)
    rows.states.append(_stamp(message_id, M.RECEIVED, now))
    batch.done.add(event.event_id)
    if who.key is None:
        _reject(row, rows, now, who.key_problem or "no key")
        return
    window = windows.get(sender.meter_number)
    if window is None:  # removed from the registry since the batch identified it
        _reject(row, rows, now, f"meter {sender.meter_number} is not registered")
        return
    if check is None:
        payload: bytes | str = event.data if event.data is not None else (event.text or "")
        check = check_frame(who.key, payload)
    try:
        frame = admit(check, window)
    except FrameError as error:
        log.warning("frame from meter %s rejected: %s", sender.meter_number, error)
        _reject(row, rows, now, f"frame: {error}")
        return
    row["kind"] = frame.header.type.name
    reading = frame.message
    if not isinstance(reading, Telemetry):
        batch.done.discard(event.event_id)
        batch.to_act[event.event_id] = FrameToAct(_message(row), sender, frame)
        return
    row["state"] = M.PROCESSED.value
    rows.states.append(_stamp(message_id, M.PROCESSED, now, "reading stored"))
    rows.readings.append(
        {
            "meter_number": sender.meter_number,
            "meter_time": reading.read_at,
            "received_at": event.received_at,
            "credit_kwh": str(reading.credit_kwh),
            "total_kwh": str(reading.energy_kwh),
            "values": {
                "request_id": reading.request_id,
                "voltage_v": str(reading.voltage_v),
                "power_w": reading.power_w,
                "status": int(reading.status),
                "signal_csq": reading.signal_csq,
            },
            "message_id": message_id,
            "ap2t_batch": None,
        }
    )
    if sender.customer_id is not None:
        rows.charges.append(
            {
                "message_id": message_id,
                "customer_id": sender.customer_id,
                "flow": Flow.METER_TO_HUB.value,
                "price_version": price_version,
                "amount_idr": prices[Flow.METER_TO_HUB],
                "charged_at": now,
            }
        )


def _reject(row: dict[str, Any], rows: _Rows, now: datetime, reason: str) -> None:
    row["state"] = M.REJECTED.value
    row["reject_reason"] = reason
    rows.states.append(_stamp(row["id"], M.REJECTED, now))


def _stamp(
    message_id: str, state: MessageState, at: datetime, detail: str | None = None
) -> dict[str, Any]:
    return {"message_id": message_id, "state": state.value, "at": at, "detail": detail}


def _message(row: dict[str, Any]) -> Message:
    values = dict(row)
    values["direction"] = Direction(values["direction"])
    values["flow"] = Flow(values["flow"])
    values["state"] = MessageState(values["state"])
    return Message(**values)


def _peer(raw: str) -> str | None:
    try:
        return normalise(raw)
    except MsisdnError:
        return None


async def _logged_keys(conn: AsyncConnection, keys: list[str]) -> dict[str, tuple[str, str]]:
    """Per idempotency key logged before: its message's state and id."""
    msgs = schema.messages
    found: dict[str, tuple[str, str]] = {}
    for part in chunks(keys):
        rows = await conn.execute(
            select(msgs.c.idempotency_key, msgs.c.state, msgs.c.id).where(
                msgs.c.idempotency_key.in_(part)
            )
        )
        found.update({str(k): (str(s), str(i)) for k, s, i in rows})
    return found


async def _refuse_stranded(conn: AsyncConnection, message_ids: list[str], at: datetime) -> None:
    """A frame logged but never acted on (a row left `received` by a unit of work that
    committed without finishing it) is refused: its replay window moved with it, so the
    counter is spent and acting on it now could be acting twice."""
    for part in chunks(message_ids):
        moved = await transition_many(
            conn,
            MESSAGES,
            list(part),
            M.REJECTED,
            at=at,
            only_from=[M.RECEIVED],
            extra_values={"reject_reason": "logged before but not acted on: counter spent"},
        )
        if moved:
            log.warning("%d meter frame(s) logged but never acted on refused", len(moved))


async def _lock_windows(conn: AsyncConnection, meters: list[str]) -> dict[str, ReplayWindow]:
    table = schema.meters
    windows: dict[str, ReplayWindow] = {}
    for part in chunks(meters):
        rows = await conn.execute(
            select(table.c.meter_number, table.c.replay_window)
            .where(table.c.meter_number.in_(part))
            .order_by(table.c.meter_number)
            .with_for_update()
        )
        windows.update({str(m): window_of(bytes(w)) for m, w in rows})
    return windows
