"""The receiver's replay window: SMS arrive out of order, so accept any counter not yet seen
within the last `SIZE` counters, as IPsec and DTLS do.

Bit i of the bitmap records counter `highest - i` (bit 0 is `highest` itself). The window is
mutable because a receiver owns exactly one per meter and direction; `to_bytes` /
`from_bytes` let the hub persist it next to the meter's other state.
"""

from __future__ import annotations

from typing import Final

from firmware_protocol.frames.errors import FrameError, Reason

SIZE: Final = 64
_MASK: Final = (1 << SIZE) - 1
_COUNTER_MAX: Final = 0xFFFF_FFFF
STATE_LENGTH: Final = 13
_COUNTER_OFFSET: Final = 9  # where the counter sits in a frame, for error offsets


class ReplayWindow:
    __slots__ = ("_bitmap", "_highest")

    def __init__(self, highest: int | None = None, bitmap: int = 0) -> None:
        if highest is None:
            if bitmap:
                raise ValueError("an empty window has no bitmap")
            bitmap = 0
        elif not 0 <= highest <= _COUNTER_MAX:
            raise ValueError(f"counter {highest} does not fit 32 bits")
        elif not (0 <= bitmap <= _MASK and bitmap & 1):
            raise ValueError("the bitmap must fit 64 bits and include the highest counter")
        self._highest = highest
        self._bitmap = bitmap

    @property
    def highest(self) -> int | None:
        """The highest counter accepted so far, None before the first."""
        return self._highest

    def seen(self, counter: int) -> bool:
        if self._highest is None or counter > self._highest:
            return False
        age = self._highest - counter
        return age < SIZE and bool(self._bitmap >> age & 1)

    def check(self, counter: int) -> None:
        """Raise REPLAYED or TOO_OLD unless `counter` would be accepted; changes nothing."""
        if not 0 <= counter <= _COUNTER_MAX:
            raise FrameError(Reason.BAD_VALUE, f"counter {counter} does not fit 32 bits")
        if self._highest is None or counter > self._highest:
            return
        age = self._highest - counter
        if age >= SIZE:
            raise FrameError(
                Reason.TOO_OLD,
                f"counter {counter} is below the window ({self._highest - SIZE + 1}–"
                f"{self._highest})",
                offset=_COUNTER_OFFSET,
            )
        if self._bitmap >> age & 1:
            raise FrameError(
                Reason.REPLAYED, f"counter {counter} was already accepted", offset=_COUNTER_OFFSET
            )

    def accept(self, counter: int) -> None:
        """Check `counter` and record it as seen."""
        self.check(counter)
        if self._highest is None:
            self._highest, self._bitmap = counter, 1
        elif counter > self._highest:
            shift = counter - self._highest
            self._bitmap = (self._bitmap << shift | 1) & _MASK if shift < SIZE else 1
            self._highest = counter
        else:
            self._bitmap |= 1 << (self._highest - counter)

    def to_bytes(self) -> bytes:
        """13 bytes: 0x01 if any counter was seen, the highest (uint32), the bitmap (uint64)."""
        if self._highest is None:
            return bytes(STATE_LENGTH)
        return b"\x01" + self._highest.to_bytes(4, "big") + self._bitmap.to_bytes(8, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> ReplayWindow:
        if len(data) != STATE_LENGTH:
            raise FrameError(
                Reason.BAD_LENGTH, f"a replay window is {STATE_LENGTH} bytes, got {len(data)}"
            )
        flag = data[0]
        highest = int.from_bytes(data[1:5], "big")
        bitmap = int.from_bytes(data[5:], "big")
        if flag == 0 and highest == 0 and bitmap == 0:
            return cls()
        if flag != 1:
            raise FrameError(Reason.BAD_VALUE, f"replay window flag {flag}", offset=0)
        if not bitmap & 1:
            raise FrameError(
                Reason.BAD_VALUE, "replay window bitmap lacks the highest counter", offset=5
            )
        return cls(highest, bitmap)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReplayWindow):
            return NotImplemented
        return (self._highest, self._bitmap) == (other._highest, other._bitmap)

    def __repr__(self) -> str:
        return f"ReplayWindow(highest={self._highest}, bitmap={self._bitmap:#x})"
