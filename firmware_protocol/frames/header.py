"""The 18-byte clear header of every frame; all of it is GCM associated data.

offset size field
0      1    version (1)
1      1    flags: bit 0 direction (0 down, 1 up); bits 1–7 reserved, zero
2      1    message type
3      1    key id
4      5    meter number, uint40 (11 decimal digits)
9      4    invocation counter, uint32
13     4    message id, uint32
17     1    segment: bits 7–4 index (0–15), bits 3–0 count − 1 (1–16 segments)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from firmware_protocol.frames.catalogue import MessageType, spec_for_code
from firmware_protocol.frames.crypto import METER_MAX
from firmware_protocol.frames.direction import Direction
from firmware_protocol.frames.errors import FrameError, Reason

VERSION: Final = 1
LENGTH: Final = 18
MAX_SEGMENTS: Final = 16
COUNTER_MAX: Final = 0xFFFF_FFFF
MESSAGE_ID_MAX: Final = 0xFFFF_FFFF

OFFSET_VERSION: Final = 0
OFFSET_FLAGS: Final = 1
OFFSET_TYPE: Final = 2
OFFSET_KEY_ID: Final = 3
OFFSET_METER: Final = 4
OFFSET_COUNTER: Final = 9
OFFSET_MESSAGE_ID: Final = 13
OFFSET_SEGMENT: Final = 17

_METER = re.compile(r"[0-9]{11}")


def meter_value(meter_number: str) -> int:
    """The 11-digit meter number as the integer the header and the system title carry."""
    if not isinstance(meter_number, str) or not _METER.fullmatch(meter_number):
        raise FrameError(Reason.BAD_METER, f"a meter number is 11 digits, got {meter_number!r}")
    return int(meter_number)


@dataclass(frozen=True, slots=True)
class Header:
    type: MessageType
    key_id: int
    meter_number: str
    counter: int
    message_id: int
    segment_index: int = 0
    segment_count: int = 1
    version: int = VERSION

    @property
    def direction(self) -> Direction:
        return self.type.direction

    def pack(self) -> bytes:
        for name, value, top in (
            ("key id", self.key_id, 0xFF),
            ("counter", self.counter, COUNTER_MAX),
            ("message id", self.message_id, MESSAGE_ID_MAX),
        ):
            if not isinstance(value, int) or not 0 <= value <= top:
                raise FrameError(Reason.BAD_VALUE, f"{name} {value!r} is outside 0–{top}")
        if not 1 <= self.segment_count <= MAX_SEGMENTS or not (
            0 <= self.segment_index < self.segment_count
        ):
            raise FrameError(
                Reason.BAD_SEGMENT, f"segment {self.segment_index} of {self.segment_count}"
            )
        return (
            bytes([self.version, self.direction.bit, self.type, self.key_id])
            + meter_value(self.meter_number).to_bytes(5, "big")
            + self.counter.to_bytes(4, "big")
            + self.message_id.to_bytes(4, "big")
            + bytes([self.segment_index << 4 | (self.segment_count - 1)])
        )


def parse(data: bytes) -> Header:
    """The header of a frame, checked for form only (nothing is authenticated yet)."""
    if len(data) < LENGTH:
        raise FrameError(
            Reason.TRUNCATED, f"a header is {LENGTH} bytes, got {len(data)}", offset=len(data)
        )
    if data[OFFSET_VERSION] != VERSION:
        raise FrameError(
            Reason.BAD_VERSION,
            f"version {data[OFFSET_VERSION]}, this codec speaks {VERSION}",
            offset=OFFSET_VERSION,
        )
    flags = data[OFFSET_FLAGS]
    if flags & ~1:
        raise FrameError(
            Reason.BAD_FLAGS, f"reserved flag bits set ({flags:#04x})", offset=OFFSET_FLAGS
        )
    spec = spec_for_code(data[OFFSET_TYPE], OFFSET_TYPE)
    if spec.direction.bit != flags & 1:
        raise FrameError(
            Reason.UNKNOWN_TYPE,
            f"{spec.message_type.name} goes {spec.direction.value}, the flags say otherwise",
            offset=OFFSET_TYPE,
        )
    meter = int.from_bytes(data[OFFSET_METER:OFFSET_COUNTER], "big")
    if meter > METER_MAX:
        raise FrameError(Reason.BAD_METER, f"{meter} has more than 11 digits", offset=OFFSET_METER)
    segment = data[OFFSET_SEGMENT]
    index, count = segment >> 4, (segment & 0xF) + 1
    if index >= count:
        raise FrameError(
            Reason.BAD_SEGMENT, f"segment index {index} of {count}", offset=OFFSET_SEGMENT
        )
    return Header(
        type=spec.message_type,
        key_id=data[OFFSET_KEY_ID],
        meter_number=f"{meter:011d}",
        counter=int.from_bytes(data[OFFSET_COUNTER:OFFSET_MESSAGE_ID], "big"),
        message_id=int.from_bytes(data[OFFSET_MESSAGE_ID:OFFSET_SEGMENT], "big"),
        segment_index=index,
        segment_count=count,
    )
