"""Putting segmented messages back together, whatever order the SMS arrive in."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_protocol.frames.catalogue import MessageType, decode_payload
from firmware_protocol.frames.direction import Direction
from firmware_protocol.frames.errors import FrameError, Reason
from firmware_protocol.frames.frame import Frame
from firmware_protocol.frames.header import Header
from firmware_protocol.frames.messages import Message


@dataclass(frozen=True, slots=True)
class Received:
    """A whole message and the headers of the frame(s) that carried it, in segment order."""

    message: Message
    headers: tuple[Header, ...]

    @property
    def type(self) -> MessageType:
        return self.headers[0].type

    @property
    def message_id(self) -> int:
        return self.headers[0].message_id

    @property
    def meter_number(self) -> str:
        return self.headers[0].meter_number

    @property
    def direction(self) -> Direction:
        return self.headers[0].direction

    @property
    def counters(self) -> tuple[int, ...]:
        return tuple(header.counter for header in self.headers)


_Key = tuple[str, Direction, int]


class Reassembler:
    """Collects segments by (meter, direction, message id).

    At most `max_pending` incomplete messages are kept; a new one beyond that evicts the
    oldest, so a sender that never finishes cannot grow memory. Segments live only here,
    so a hub that must survive restarts keeps the raw SMS (it does, in its message log) and
    re-opens them without a replay window to rebuild what was pending.
    """

    def __init__(self, max_pending: int = 8) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._max_pending = max_pending
        self._pending: dict[_Key, list[Frame | None]] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def missing(self, meter_number: str, direction: Direction, message_id: int) -> list[int]:
        """Segment indexes not yet received for a pending message (empty if none pending)."""
        slots = self._pending.get((meter_number, direction, message_id), [])
        return [index for index, slot in enumerate(slots) if slot is None]

    def add(self, frame: Frame) -> Received | None:
        """The message once its last segment arrives; None while segments are missing."""
        header = frame.header
        if header.segment_count == 1:
            assert frame.message is not None  # open_frame decodes single-frame messages
            return Received(frame.message, (header,))
        key = (header.meter_number, header.direction, header.message_id)
        slots = self._pending.get(key)
        if slots is None:
            if len(self._pending) >= self._max_pending:
                del self._pending[next(iter(self._pending))]
            slots = self._pending[key] = [None] * header.segment_count
        first = next((slot for slot in slots if slot is not None), None)
        if first is not None and (
            first.header.type is not header.type
            or first.header.segment_count != header.segment_count
        ):
            raise FrameError(
                Reason.SEGMENT_MISMATCH,
                f"message {header.message_id}: segment {header.segment_index} says "
                f"{header.type.name} in {header.segment_count}, earlier ones "
                f"{first.header.type.name} in {first.header.segment_count}",
            )
        existing = slots[header.segment_index]
        if existing is not None:
            if existing.body != frame.body:
                raise FrameError(
                    Reason.SEGMENT_MISMATCH,
                    f"message {header.message_id}: two different segment {header.segment_index}",
                )
            return None
        slots[header.segment_index] = frame
        if any(slot is None for slot in slots):
            return None
        del self._pending[key]
        frames = [slot for slot in slots if slot is not None]
        payload = b"".join(part.body for part in frames)
        message = decode_payload(header.type, payload)
        return Received(message, tuple(part.header for part in frames))
