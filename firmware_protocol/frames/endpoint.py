"""One side of one meter's link: the keys, the sending counter and the replay window.

The hub holds one `Endpoint(role=Role.HUB)` per meter, the meter (and the meter simulator)
one `Endpoint(role=Role.METER)`. `seal` advances the counter: persist `state()` before the
frames leave, or a restart could reuse a counter, and a reused counter under one key breaks
GCM. `receive` opens, checks replay and reassembles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from firmware_protocol.frames import crypto
from firmware_protocol.frames.catalogue import spec_for
from firmware_protocol.frames.direction import Direction
from firmware_protocol.frames.errors import FrameError, Reason
from firmware_protocol.frames.frame import MAX_FRAME, seal
from firmware_protocol.frames.header import COUNTER_MAX, meter_value
from firmware_protocol.frames.messages import Message
from firmware_protocol.frames.reassembly import Reassembler, Received
from firmware_protocol.frames.replay import ReplayWindow
from firmware_protocol.frames.text import TEXT_MAX_FRAME, decode_any, to_text


class Role(Enum):
    HUB = "hub"
    METER = "meter"

    @property
    def sends(self) -> Direction:
        return Direction.DOWN if self is Role.HUB else Direction.UP


@dataclass(frozen=True, slots=True)
class EndpointState:
    """What must outlive a process (keys are not part of it: they come from the key store)."""

    key_id: int
    next_counter: int
    replay: bytes  # ReplayWindow.to_bytes()


class Endpoint:
    def __init__(
        self,
        *,
        role: Role,
        meter_number: str,
        keys: Mapping[int, bytes],
        key_id: int,
        next_counter: int = 0,
        replay: ReplayWindow | None = None,
        max_pending: int = 8,
    ) -> None:
        meter_value(meter_number)
        for key in keys.values():
            crypto.check_key(key)
        if not 0 <= next_counter <= COUNTER_MAX + 1:
            raise FrameError(Reason.BAD_VALUE, f"counter {next_counter} is outside 0–2^32")
        self.role = role
        self.meter_number = meter_number
        self._keys = dict(keys)
        self._key_id = key_id
        self.use_key(key_id)
        self._next_counter = next_counter
        self.replay = replay if replay is not None else ReplayWindow()
        self._reassembler = Reassembler(max_pending)

    @classmethod
    def restore(
        cls, state: EndpointState, *, role: Role, meter_number: str, keys: Mapping[int, bytes]
    ) -> Endpoint:
        return cls(
            role=role,
            meter_number=meter_number,
            keys=keys,
            key_id=state.key_id,
            next_counter=state.next_counter,
            replay=ReplayWindow.from_bytes(state.replay),
        )

    def state(self) -> EndpointState:
        return EndpointState(self._key_id, self._next_counter, self.replay.to_bytes())

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def next_counter(self) -> int:
        return self._next_counter

    def use_key(self, key_id: int) -> None:
        """Send under `key_id` from now on; incoming frames may use any key held."""
        if key_id not in self._keys:
            raise FrameError(Reason.UNKNOWN_KEY, f"no key with id {key_id}")
        self._key_id = key_id

    def seal(self, message: Message, *, message_id: int, max_frame: int = MAX_FRAME) -> list[bytes]:
        """The binary frame(s) for `message`, each with the next counter."""
        direction = spec_for(message).direction
        if direction is not self.role.sends:
            raise FrameError(
                Reason.WRONG_DIRECTION,
                f"a {self.role.value} sends {self.role.sends.value} messages, "
                f"{type(message).__name__} goes {direction.value}",
            )
        frames = seal(
            message,
            key=self._keys[self._key_id],
            key_id=self._key_id,
            meter_number=self.meter_number,
            counter=self._next_counter,
            message_id=message_id,
            max_frame=max_frame,
        )
        self._next_counter += len(frames)
        return frames

    def seal_text(self, message: Message, *, message_id: int) -> list[str]:
        """The text-form frame(s) for `message`, sized for 160-character SMS."""
        frames = self.seal(message, message_id=message_id, max_frame=TEXT_MAX_FRAME)
        return [to_text(frame) for frame in frames]

    def receive(self, data: bytes | str) -> Received | None:
        """The message once complete; None while segments of it are missing."""
        frame = decode_any(
            data,
            keys=self._keys,
            meter_number=self.meter_number,
            direction=self.role.sends.opposite,
            replay=self.replay,
        )
        return self._reassembler.add(frame)
