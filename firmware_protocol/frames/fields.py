"""Field kinds: how one payload field turns into fixed-width big-endian bytes and back.

Every kind checks the Python value before encoding and the raw value after decoding, and
reports the field's name and byte offset when either is wrong. Scaled quantities are
`Decimal` at the edges and integers on the wire, so no float ever touches energy or credit.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum, IntFlag
from typing import Protocol

from firmware_protocol.frames.errors import FrameError, Reason


class Kind(Protocol):
    """A field's codec. `describe` is the wire form the protocol document shows."""

    @property
    def describe(self) -> str: ...

    def encode(self, value: object, name: str, offset: int) -> bytes: ...

    def decode(self, data: bytes, offset: int, name: str) -> tuple[object, int]: ...


def _take(data: bytes, offset: int, size: int, name: str) -> int:
    if len(data) < offset + size:
        raise FrameError(
            Reason.TRUNCATED,
            f"{name} needs {size} bytes, {max(len(data) - offset, 0)} left",
            offset=offset,
            field=name,
        )
    return int.from_bytes(data[offset : offset + size], "big")


def _bad(name: str, offset: int, detail: str) -> FrameError:
    return FrameError(Reason.BAD_VALUE, f"{name} {detail}", offset=offset, field=name)


def _in_ranges(raw: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= raw <= high for low, high in ranges)


def _ranges_text(ranges: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(str(low) if low == high else f"{low}–{high}" for low, high in ranges)


@dataclass(frozen=True, slots=True)
class UInt:
    """An unsigned integer of `size` bytes, optionally limited to `ranges` (inclusive)."""

    size: int
    ranges: tuple[tuple[int, int], ...] = ()

    @property
    def valid(self) -> tuple[tuple[int, int], ...]:
        return self.ranges or ((0, (1 << 8 * self.size) - 1),)

    @property
    def describe(self) -> str:
        return f"uint{8 * self.size}" + (f" ({_ranges_text(self.ranges)})" if self.ranges else "")

    def encode(self, value: object, name: str, offset: int) -> bytes:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(name, offset, f"must be an int, got {type(value).__name__}")
        if not _in_ranges(value, self.valid):
            raise _bad(name, offset, f"{value} is outside {_ranges_text(self.valid)}")
        return value.to_bytes(self.size, "big")

    def decode(self, data: bytes, offset: int, name: str) -> tuple[object, int]:
        raw = _take(data, offset, self.size, name)
        # Without ranges every value of `size` bytes is valid: nothing to check.
        if self.ranges and not _in_ranges(raw, self.ranges):
            raise _bad(name, offset, f"{raw} is outside {_ranges_text(self.valid)}")
        return raw, offset + self.size


@dataclass(frozen=True, slots=True)
class Scaled:
    """A non-negative quantity in units of 10**-places, carried as an unsigned integer."""

    size: int
    places: int

    @property
    def step(self) -> Decimal:
        return Decimal(1).scaleb(-self.places)

    @property
    def maximum(self) -> Decimal:
        return Decimal((1 << 8 * self.size) - 1).scaleb(-self.places)

    @property
    def describe(self) -> str:
        return f"uint{8 * self.size} × {self.step}"

    def encode(self, value: object, name: str, offset: int) -> bytes:
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise _bad(name, offset, f"must be a Decimal, got {type(value).__name__}")
        amount = Decimal(value)
        if not amount.is_finite():
            raise _bad(name, offset, f"{amount} is not a number")
        raw = amount.scaleb(self.places)
        if raw != raw.to_integral_value():
            raise _bad(name, offset, f"{amount} is not a multiple of {self.step}")
        if not 0 <= raw <= (1 << 8 * self.size) - 1:
            raise _bad(name, offset, f"{amount} is outside 0–{self.maximum}")
        return int(raw).to_bytes(self.size, "big")

    def decode(self, data: bytes, offset: int, name: str) -> tuple[object, int]:
        raw = _take(data, offset, self.size, name)
        return Decimal(raw).scaleb(-self.places), offset + self.size


@dataclass(frozen=True, slots=True)
class Time:
    """A UTC instant in whole seconds since 1970-01-01, uint32 (good until 2106)."""

    @property
    def describe(self) -> str:
        return "uint32 Unix seconds, UTC"

    def encode(self, value: object, name: str, offset: int) -> bytes:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise _bad(name, offset, "must be a timezone-aware datetime")
        if value.microsecond:
            raise _bad(name, offset, f"{value.isoformat()} is not a whole second")
        seconds = int(value.timestamp())
        if not 0 <= seconds <= 0xFFFF_FFFF:
            raise _bad(name, offset, f"{value.isoformat()} is outside 1970–2106")
        return seconds.to_bytes(4, "big")

    def decode(self, data: bytes, offset: int, name: str) -> tuple[object, int]:
        raw = _take(data, offset, 4, name)
        return datetime.fromtimestamp(raw, UTC), offset + 4


@dataclass(frozen=True, slots=True)
class Choice:
    """One member of an `IntEnum`, one byte."""

    enum: type[IntEnum]

    @property
    def describe(self) -> str:
        return f"uint8 {self.enum.__name__}"

    def encode(self, value: object, name: str, offset: int) -> bytes:
        if not isinstance(value, self.enum):
            raise _bad(name, offset, f"must be a {self.enum.__name__}, got {value!r}")
        return int(value).to_bytes(1, "big")

    def decode(self, data: bytes, offset: int, name: str) -> tuple[object, int]:
        raw = _take(data, offset, 1, name)
        try:
            return self.enum(raw), offset + 1
        except ValueError:
            raise _bad(name, offset, f"{raw} is not a {self.enum.__name__}") from None


@functools.cache
def _known_bits(flags: type[IntFlag]) -> int:
    mask = 0
    for member in flags:
        mask |= int(member)
    return mask


@dataclass(frozen=True, slots=True)
class Flags:
    """A set of `IntFlag` bits; bits the flag type does not define must be zero."""

    size: int
    flags: type[IntFlag]

    @property
    def known(self) -> int:
        return _known_bits(self.flags)

    @property
    def describe(self) -> str:
        return f"uint{8 * self.size} {self.flags.__name__} bits"

    def encode(self, value: object, name: str, offset: int) -> bytes:
        if not isinstance(value, self.flags):
            raise _bad(name, offset, f"must be a {self.flags.__name__}, got {value!r}")
        return int(value).to_bytes(self.size, "big")

    def decode(self, data: bytes, offset: int, name: str) -> tuple[object, int]:
        raw = _take(data, offset, self.size, name)
        if raw & ~self.known:
            raise _bad(name, offset, f"has reserved bits set ({raw & ~self.known:#x})")
        return self.flags(raw), offset + self.size


_TOKEN_DIGITS = re.compile(r"[0-9]{20}")
_TOKEN_BITS = 66
_TOKEN_SIZE = 9


@dataclass(frozen=True, slots=True)
class StsToken:
    """A 20-digit STS token as its 66-bit number in 9 bytes (the top 6 bits zero)."""

    @property
    def describe(self) -> str:
        return "uint72 token number (< 2^66)"

    def encode(self, value: object, name: str, offset: int) -> bytes:
        if not isinstance(value, str) or not _TOKEN_DIGITS.fullmatch(value):
            raise _bad(name, offset, f"must be a string of 20 digits, got {value!r}")
        number = int(value)
        if number >= 1 << _TOKEN_BITS:
            raise _bad(name, offset, f"{value} is larger than {_TOKEN_BITS} bits")
        return number.to_bytes(_TOKEN_SIZE, "big")

    def decode(self, data: bytes, offset: int, name: str) -> tuple[object, int]:
        number = _take(data, offset, _TOKEN_SIZE, name)
        if number >= 1 << _TOKEN_BITS:
            raise _bad(name, offset, f"{number} is larger than {_TOKEN_BITS} bits")
        return f"{number:020d}", offset + _TOKEN_SIZE


@dataclass(frozen=True, slots=True)
class ListOf:
    """A one-byte item count, then that many items of one kind."""

    item: Kind
    max_items: int = 255

    @property
    def describe(self) -> str:
        return f"uint8 count (0–{self.max_items}), then count × {self.item.describe}"

    def encode(self, value: object, name: str, offset: int) -> bytes:
        if not isinstance(value, tuple):
            raise _bad(name, offset, f"must be a tuple, got {type(value).__name__}")
        if len(value) > self.max_items:
            raise _bad(name, offset, f"has {len(value)} items, at most {self.max_items}")
        out = bytearray([len(value)])
        for index, item in enumerate(value):
            out += self.item.encode(item, f"{name}[{index}]", offset + len(out))
        return bytes(out)

    def decode(self, data: bytes, offset: int, name: str) -> tuple[object, int]:
        count = _take(data, offset, 1, name)
        if count > self.max_items:
            raise _bad(name, offset, f"count {count} is above {self.max_items}")
        position = offset + 1
        items = []
        for index in range(count):
            item, position = self.item.decode(data, position, f"{name}[{index}]")
            items.append(item)
        return tuple(items), position
