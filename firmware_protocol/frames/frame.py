"""Sealing messages into frames and opening frames, one SMS each.

A frame is the clear header (associated data), the encrypted payload segment and a 12-byte
tag. A payload larger than one frame's room is split into up to 16 segments; each segment
is a frame of its own with its own counter, and all carry the same message id and type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from firmware_protocol.frames import crypto
from firmware_protocol.frames import header as hdr
from firmware_protocol.frames.catalogue import decode_payload, encode_payload
from firmware_protocol.frames.direction import Direction
from firmware_protocol.frames.errors import FrameError, Reason
from firmware_protocol.frames.header import Header
from firmware_protocol.frames.messages import Message
from firmware_protocol.frames.replay import ReplayWindow

#: An 8-bit data SMS carries 140 octets.
MAX_FRAME: Final = 140
OVERHEAD: Final = hdr.LENGTH + crypto.TAG_LENGTH
MIN_FRAME: Final = OVERHEAD


@dataclass(frozen=True, slots=True)
class Frame:
    """An opened, authenticated frame. `message` is None for one segment of several."""

    header: Header
    body: bytes  # this frame's decrypted payload segment
    message: Message | None


def _nonce(header: Header) -> bytes:
    return crypto.iv(hdr.meter_value(header.meter_number), header.direction, header.counter)


def segment_room(max_frame: int) -> int:
    """How many payload bytes one frame of at most `max_frame` bytes can carry."""
    if not OVERHEAD < max_frame <= MAX_FRAME:
        raise FrameError(
            Reason.BAD_VALUE, f"max_frame {max_frame} is outside {OVERHEAD + 1}–{MAX_FRAME}"
        )
    return max_frame - OVERHEAD


def seal(
    message: Message,
    *,
    key: bytes,
    key_id: int,
    meter_number: str,
    counter: int,
    message_id: int,
    max_frame: int = MAX_FRAME,
) -> list[bytes]:
    """Encrypt and authenticate `message` into one frame, or more if it does not fit.

    The frames use counters `counter`, `counter + 1`, … — one per frame; the caller must
    never use any of them again under this key. The direction is the message type's own.
    """
    crypto.check_key(key)
    hdr.meter_value(meter_number)
    message_type, payload = encode_payload(message)
    room = segment_room(max_frame)
    count = max(1, -(-len(payload) // room))
    if count > hdr.MAX_SEGMENTS:
        raise FrameError(
            Reason.TOO_LARGE,
            f"{message_type.name} payload of {len(payload)} bytes needs {count} frames of "
            f"{max_frame} bytes, at most {hdr.MAX_SEGMENTS}",
        )
    if not isinstance(counter, int) or not 0 <= counter <= hdr.COUNTER_MAX - count + 1:
        raise FrameError(
            Reason.COUNTER_EXHAUSTED,
            f"counter {counter} leaves no room for {count} frame(s) below 2^32; rotate the key",
        )
    frames = []
    for index in range(count):
        header = Header(
            type=message_type,
            key_id=key_id,
            meter_number=meter_number,
            counter=counter + index,
            message_id=message_id,
            segment_index=index,
            segment_count=count,
        )
        aad = header.pack()
        segment = payload[index * room : (index + 1) * room]
        frames.append(aad + crypto.encrypt(key, _nonce(header), aad, segment))
    return frames


def peek(data: bytes) -> Header:
    """The header of a binary frame, unauthenticated: for routing and key lookup only."""
    if len(data) > MAX_FRAME:
        raise FrameError(
            Reason.TOO_LONG, f"{len(data)} bytes, one SMS carries {MAX_FRAME}", offset=MAX_FRAME
        )
    header = hdr.parse(data)
    if len(data) < MIN_FRAME:
        raise FrameError(
            Reason.TRUNCATED,
            f"a frame is at least {MIN_FRAME} bytes (header and tag), got {len(data)}",
            offset=len(data),
        )
    return header


def open_frame(
    data: bytes,
    *,
    keys: Mapping[int, bytes],
    meter_number: str,
    direction: Direction | None,
    replay: ReplayWindow | None,
) -> Frame:
    """Authenticate and decrypt one binary frame.

    `direction` is the direction the receiver expects (None accepts either). A frame is
    checked against the replay window only after it authenticates, so forged frames cannot
    move the window; the window records it before the payload is decoded, because an
    authentic frame has used its counter whatever it carries.
    """
    frame = authenticate(data, keys=keys, meter_number=meter_number, direction=direction)
    if replay is not None:
        replay.accept(frame.header.counter)
    return decode_frame(frame)


def authenticate(
    data: bytes,
    *,
    keys: Mapping[int, bytes],
    meter_number: str,
    direction: Direction | None,
) -> Frame:
    """The first half of `open_frame`: the frame authenticated and decrypted, its message
    not decoded yet (None). A receiver that checks replay itself, later, uses this, then
    its window, then `decode_frame`."""
    hdr.meter_value(meter_number)
    header = peek(bytes(data))
    if direction is not None and header.direction is not direction:
        raise FrameError(
            Reason.WRONG_DIRECTION,
            f"expected {direction.value}, got {header.type.name} ({header.direction.value})",
            offset=hdr.OFFSET_FLAGS,
        )
    if header.meter_number != meter_number:
        raise FrameError(
            Reason.WRONG_METER,
            f"frame is for meter {header.meter_number}, expected {meter_number}",
            offset=hdr.OFFSET_METER,
        )
    key = keys.get(header.key_id)
    if key is None:
        raise FrameError(
            Reason.UNKNOWN_KEY, f"no key with id {header.key_id}", offset=hdr.OFFSET_KEY_ID
        )
    aad = bytes(data[: hdr.LENGTH])
    body = crypto.decrypt(
        key, _nonce(header), aad, bytes(data[hdr.LENGTH :]), offset=len(data) - crypto.TAG_LENGTH
    )
    return Frame(header=header, body=body, message=None)


def decode_frame(frame: Frame) -> Frame:
    """The second half of `open_frame`: an authenticated frame with its message decoded
    (left None for one segment of several). Raises FrameError for a bad payload."""
    if frame.header.segment_count != 1:
        return frame
    return Frame(frame.header, frame.body, decode_payload(frame.header.type, frame.body))
