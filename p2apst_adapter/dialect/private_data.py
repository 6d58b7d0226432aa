"""Fixed-width sub-fields inside bits 4, 48, 56 and 62, as tables of (name, width, kind).

The tables themselves are data (the dialect file, see `loader`); this module is their types.
Values: `DIGITS` and `TEXT` decode to `str` (digits keep their leading zeros, text loses its
padding spaces), `NUMBER` to `int`, `MONEY` to `Decimal`. A money sub-field is one
minor-unit digit (how many of the following digits are decimals) and then the digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum

from p2apst_adapter.dialect.errors import IsoError

Value = str | int | Decimal
_DIGITS = re.compile(r"[0-9]*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


class SubKind(Enum):
    DIGITS = "digits"  # zero-padded on the left, kept as text
    NUMBER = "number"  # zero-padded on the left, an int
    TEXT = "text"  # printable ASCII, space-padded on the right
    MONEY = "money"  # minor-unit digit + digits, a Decimal


@dataclass(frozen=True, slots=True)
class SubField:
    name: str
    width: int
    kind: SubKind
    minor: int = 0  # MONEY: the minor unit used when encoding a value with fewer decimals

    def encode(self, value: Value, where: str) -> str:
        match self.kind:
            case SubKind.DIGITS:
                text = str(value)
                if not _DIGITS.fullmatch(text) or len(text) > self.width:
                    raise IsoError(f"needs up to {self.width} digits, got {value!r}", field=where)
                return text.zfill(self.width)
            case SubKind.NUMBER:
                if not isinstance(value, int) or value < 0 or len(str(value)) > self.width:
                    raise IsoError(
                        f"needs a whole number of up to {self.width} digits, got {value!r}",
                        field=where,
                    )
                return str(value).zfill(self.width)
            case SubKind.TEXT:
                text = str(value)
                if not _PRINTABLE.fullmatch(text) or len(text) > self.width:
                    raise IsoError(
                        f"needs printable ASCII up to {self.width} characters, got {value!r}",
                        field=where,
                    )
                return text.ljust(self.width)
            case SubKind.MONEY:
                return self._encode_money(value, where)

    def _encode_money(self, value: Value, where: str) -> str:
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise IsoError(f"needs a Decimal amount, got {value!r}", field=where)
        amount = Decimal(value)
        if not amount.is_finite() or amount < 0:
            raise IsoError(f"needs a non-negative amount, got {value}", field=where)
        exponent = amount.normalize().as_tuple().exponent
        assert isinstance(exponent, int)  # finite, checked above
        minor = max(self.minor, -exponent)
        digits = self.width - 1
        scaled = amount.scaleb(minor)
        if minor > 9 or len(str(int(scaled))) > digits:
            raise IsoError(f"amount {value} does not fit {digits} digits", field=where)
        return f"{minor}{int(scaled):0{digits}d}"

    def decode(self, text: str, where: str, offset: int) -> Value:
        match self.kind:
            case SubKind.DIGITS | SubKind.NUMBER:
                if not _DIGITS.fullmatch(text):
                    raise IsoError(f"expected digits, got {text!r}", field=where, offset=offset)
                return int(text) if self.kind is SubKind.NUMBER else text
            case SubKind.TEXT:
                if not _PRINTABLE.fullmatch(text):
                    raise IsoError("expected printable ASCII", field=where, offset=offset)
                return text.rstrip(" ")
            case SubKind.MONEY:
                if not _DIGITS.fullmatch(text):
                    raise IsoError(f"expected digits, got {text!r}", field=where, offset=offset)
                try:
                    return Decimal(int(text[1:])).scaleb(-int(text[0]))
                except InvalidOperation as error:  # pragma: no cover - digits always parse
                    raise IsoError(str(error), field=where, offset=offset) from error


@dataclass(frozen=True, slots=True)
class Layout:
    """A fixed sequence of sub-fields, optionally followed by repeats of `repeat`.

    With `count`, the NUMBER sub-field of that name says how many repeats follow; without
    it, as many whole repeats as the text holds (real bit 62s carry an unsold amount after
    `total_repeat = 0`, so the count cannot be trusted there). A `lenient` layout is
    informational: `decode` keeps what parses and never raises; `problem` says what did not.
    """

    name: str
    bit: int
    fields: tuple[SubField, ...]
    repeat: SubField | None = None
    count: str | None = None
    lenient: bool = False

    @property
    def width(self) -> int:
        """Width of the fixed part."""
        return sum(sub.width for sub in self.fields)

    def names(self) -> tuple[str, ...]:
        return tuple(sub.name for sub in self.fields)

    def encode(self, values: Mapping[str, object]) -> str:
        parts: list[str] = []
        for sub in self.fields:
            where = f"{self.bit}.{sub.name}"
            if sub.name not in values:
                raise IsoError(f"{self.name} needs {sub.name}", field=where)
            parts.append(sub.encode(_value(values[sub.name], where), where))
        if self.repeat is not None:
            items = values.get(self.repeat.name, ())
            if not isinstance(items, list | tuple) or (
                self.count is not None and len(items) != values.get(self.count)
            ):
                raise IsoError(
                    f"{self.repeat.name} must be a list of {self.count or 'any number of'} items",
                    field=f"{self.bit}.{self.repeat.name}",
                )
            for index, item in enumerate(items):
                where = f"{self.bit}.{self.repeat.name}[{index}]"
                parts.append(self.repeat.encode(_value(item, where), where))
        return "".join(parts)

    def decode(self, text: str) -> dict[str, object]:
        """The values; a strict layout raises `IsoError` (field and offset) on any fault."""
        values, problem = self._decode(text)
        if problem is not None and not self.lenient:
            raise problem
        return values

    def problem(self, text: str) -> IsoError | None:
        """What a strict reading of `text` refuses, or None; for lenient layouts' logs."""
        return self._decode(text)[1]

    def _decode(self, text: str) -> tuple[dict[str, object], IsoError | None]:
        values: dict[str, object] = {}
        first: IsoError | None = None
        offset = 0
        for sub in self.fields:
            piece = text[offset : offset + sub.width]
            where = f"{self.bit}.{sub.name}"
            if len(piece) < sub.width:
                short = IsoError(
                    f"{self.name} is {len(text)} characters, too short for {sub.name}",
                    field=where,
                    offset=offset,
                )
                return values, first or short
            try:
                values[sub.name] = sub.decode(piece, where, offset)
            except IsoError as error:
                if not self.lenient:
                    return values, error
                first = first or error  # fixed widths: the next sub-field is still in place
            offset += sub.width
        if self.repeat is not None:
            items, offset, fault = self._repeats(text, offset, values)
            values[self.repeat.name] = items
            if fault is not None:
                return values, first or fault
        if offset != len(text):
            extra = IsoError(
                f"{self.name} has {len(text) - offset} characters too many",
                field=str(self.bit),
                offset=offset,
            )
            return values, first or extra
        return values, first

    def _repeats(
        self, text: str, offset: int, values: Mapping[str, object]
    ) -> tuple[list[Value], int, IsoError | None]:
        assert self.repeat is not None
        wanted: int | None = None
        if self.count is not None:
            count = values.get(self.count)
            if not isinstance(count, int):
                return (
                    [],
                    offset,
                    IsoError(
                        f"{self.name} has no readable {self.count}",
                        field=f"{self.bit}.{self.count}",
                    ),
                )
            wanted = count
        items: list[Value] = []
        while wanted is None or len(items) < wanted:
            where = f"{self.bit}.{self.repeat.name}[{len(items)}]"
            piece = text[offset : offset + self.repeat.width]
            if len(piece) < self.repeat.width:
                if wanted is None and not piece:
                    break
                fault = IsoError(
                    f"{self.name} ends inside repeat {len(items)}"
                    if piece or wanted is None
                    else f"{self.name} ends before repeat {len(items)}",
                    field=where,
                    offset=offset,
                )
                return items, offset, fault
            try:
                items.append(self.repeat.decode(piece, where, offset))
            except IsoError as error:
                return items, offset, error
            offset += self.repeat.width
        return items, offset, None


def _value(value: object, where: str) -> Value:
    if isinstance(value, str | int | Decimal):
        return value
    raise IsoError(f"unsupported value {value!r}", field=where)
