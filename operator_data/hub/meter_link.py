"""Frames to and from one meter, with the meter's key and counters kept in the registry.

Inbound: the replay window is read and written back in the caller's transaction, so a
frame is acted on at most once even across restarts. Outbound: the counter is reserved
(persisted) in the same transaction as the outbox row that carries the frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import (
    Direction,
    Frame,
    FrameError,
    Message,
    Reason,
    ReplayWindow,
    authenticate,
    decode_frame,
    seal,
    to_binary,
)
from operator_data.registry import CommsKey, Registry
from operator_data.store import schema
from operator_data.store.locks import lock_rows

_DIGITS = re.compile(r"([0-9]+)$")


def frame_key_id(comms_key_id: str | None) -> int:
    """The frame header's key id (0–255) for a registry key id: its trailing number
    ("k1" -> 1, "7" -> 7), or 0 when it has none. Rotation bumps that number."""
    if comms_key_id is None:
        return 0
    match = _DIGITS.search(comms_key_id)
    return int(match.group(1)) % 256 if match else 0


class StaleReplayState(RuntimeError):
    """Another worker moved the meter's replay window meanwhile; re-read and retry."""


@dataclass(frozen=True, slots=True)
class Checked:
    """A frame checked without its replay window (before the batch's transaction): either
    refused outright (`frame` None: forged, for another meter, garbage) or authentic, with
    its message decoded or `error` saying why the payload is unusable."""

    frame: Frame | None
    error: FrameError | None = None


def check_frame(key: CommsKey, data: bytes | str) -> Checked:
    try:
        frame = authenticate(
            to_binary(data),
            keys={frame_key_id(key.key_id): key.key},
            meter_number=key.meter_number,
            direction=Direction.UP,
        )
    except FrameError as refused:
        return Checked(None, refused)
    if frame.header.segment_count != 1:
        segmented = FrameError(
            Reason.SEGMENT_MISMATCH, "segmented messages are not taken by the hub yet", offset=17
        )
        return Checked(frame, segmented)
    try:
        return Checked(decode_frame(frame))
    except FrameError as unusable:
        return Checked(frame, unusable)


def admit(checked: Checked, window: ReplayWindow) -> Frame:
    """The checked frame against the meter's replay window (moving it); raises FrameError.
    An authentic frame uses up its counter even if its payload is unusable."""
    if checked.frame is None:
        assert checked.error is not None
        raise checked.error
    window.accept(checked.frame.header.counter)
    if checked.error is not None:
        raise checked.error
    return checked.frame


def read_frame(key: CommsKey, window: ReplayWindow, data: bytes | str) -> Frame:
    """Authenticate, replay-check (moving `window`) and decode one frame from
    `key.meter_number`; raises FrameError."""
    return admit(check_frame(key, data), window)


async def lock_meter(conn: AsyncConnection, meter_number: str) -> None:
    """Take the meter's row for the rest of the caller's transaction. Work that touches a
    meter and one of its transactions locks the meter first (the inbound batch locks its
    senders' meters before acting on their frames), so two such units queue instead of
    deadlocking. A no-op on SQLite, where writers take turns anyway."""
    await lock_rows(
        conn,
        select(schema.meters.c.meter_number).where(schema.meters.c.meter_number == meter_number),
    )


def window_of(replay_window: bytes) -> ReplayWindow:
    return ReplayWindow.from_bytes(replay_window) if replay_window else ReplayWindow()


async def open_inbound(
    conn: AsyncConnection,
    registry: Registry,
    key: CommsKey,
    data: bytes | str,
) -> Frame:
    """`read_frame` against the meter's replay window as stored, saved back (compare and
    set) in the caller's transaction. Raises FrameError, StaleReplayState."""
    meter = key.meter_number
    counters = await registry.frame_counters(meter, conn=conn)
    window = window_of(counters.replay_window)
    before = window.to_bytes()
    error: FrameError | None = None
    frame: Frame | None = None
    try:
        frame = read_frame(key, window, data)
    except FrameError as failure:
        error = failure
    if window.to_bytes() != before:
        saved = await registry.save_rx_state(
            meter,
            expected=counters,
            rx_counter=window.highest or 0,
            replay_window=window.to_bytes(),
            conn=conn,
        )
        if not saved:
            raise StaleReplayState(meter)
    if error is not None:
        raise error
    assert frame is not None
    return frame


async def seal_outbound(
    conn: AsyncConnection, registry: Registry, key: CommsKey, message: Message
) -> tuple[bytes, int]:
    """One binary frame for `message` and its counter (also used as the frame's message id,
    which the meter echoes as `request_id`). The counter is persisted first."""
    counter = await registry.reserve_tx_counter(key.meter_number, conn=conn)
    return seal_frame(key, message, counter), counter


def seal_frame(key: CommsKey, message: Message, counter: int) -> bytes:
    """The one binary frame for `message` under a counter already reserved."""
    frames = seal(
        message,
        key=key.key,
        key_id=frame_key_id(key.key_id),
        meter_number=key.meter_number,
        counter=counter,
        message_id=counter,
    )
    if len(frames) != 1:  # every hub -> meter message fits one SMS
        raise FrameError(Reason.TOO_LARGE, f"{type(message).__name__} needs {len(frames)} frames")
    return frames[0]
