"""Fixed-width sub-fields inside bits 4, 48, 56 and 62, as tables of (name, width, kind).

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
from p2apst_adapter.dialect.fields import Mti

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
    """A fixed sequence of sub-fields, optionally followed by `count` repeats of `repeat`."""

    name: str
    bit: int
    fields: tuple[SubField, ...]
    repeat: SubField | None = None
    count: str | None = None  # the NUMBER sub-field holding the number of repeats

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
        if self.repeat is not None and self.count is not None:
            items = values.get(self.repeat.name, ())
            if not isinstance(items, list | tuple) or len(items) != values.get(self.count):
                raise IsoError(
                    f"{self.repeat.name} must be a list of {self.count} items",
                    field=f"{self.bit}.{self.repeat.name}",
                )
            for index, item in enumerate(items):
                where = f"{self.bit}.{self.repeat.name}[{index}]"
                parts.append(self.repeat.encode(_value(item, where), where))
        return "".join(parts)

    def decode(self, text: str) -> dict[str, object]:
        values: dict[str, object] = {}
        offset = 0
        for sub in self.fields:
            piece = text[offset : offset + sub.width]
            where = f"{self.bit}.{sub.name}"
            if len(piece) < sub.width:
                raise IsoError(
                    f"{self.name} is {len(text)} characters, too short for {sub.name}",
                    field=where,
                    offset=offset,
                )
            values[sub.name] = sub.decode(piece, where, offset)
            offset += sub.width
        if self.repeat is not None and self.count is not None:
            count = values[self.count]
            assert isinstance(count, int)
            items: list[Value] = []
            for index in range(count):
                where = f"{self.bit}.{self.repeat.name}[{index}]"
                piece = text[offset : offset + self.repeat.width]
                if len(piece) < self.repeat.width:
                    raise IsoError(
                        f"{self.name} ends before repeat {index}", field=where, offset=offset
                    )
                items.append(self.repeat.decode(piece, where, offset))
                offset += self.repeat.width
            values[self.repeat.name] = items
        if offset != len(text):
            raise IsoError(
                f"{self.name} has {len(text) - offset} characters too many",
                field=str(self.bit),
                offset=offset,
            )
        return values


def _value(value: object, where: str) -> Value:
    if isinstance(value, str | int | Decimal):
        return value
    raise IsoError(f"unsupported value {value!r}", field=where)


_D, _N, _T, _M = SubKind.DIGITS, SubKind.NUMBER, SubKind.TEXT, SubKind.MONEY


def _money(name: str, width: int = 11, minor: int = 0) -> SubField:
    return SubField(name, width, _M, minor)


SWITCHER_ID = SubField("switcher_id", 7, _D)
METER_NUMBER = SubField("meter_number", 11, _D)
CUSTOMER_ID = SubField("customer_id", 12, _D)
FLAG = SubField("flag", 1, _D)  # 0 = look up by meter number, 1 = by customer ID
PLN_REFERENCE = SubField("pln_reference", 32, _T)
SWITCHER_REFERENCE = SubField("switcher_reference", 32, _T)
CUSTOMER_NAME = SubField("customer_name", 25, _T)
TARIFF = SubField("tariff", 4, _T)
POWER_VA = SubField("power_va", 9, _N)
BUYING_OPTION = SubField("buying_option", 1, _D)
TOKEN = SubField("token", 20, _D)

# --- bit 4 -----------------------------------------------------------------------------
AMOUNT = Layout("amount", 4, (SubField("currency", 3, _D), _money("amount", 13)))

# --- bit 48, prepaid ---------------------------------------------------------------------
INQUIRY_REQUEST = Layout("inquiry request", 48, (SWITCHER_ID, METER_NUMBER, CUSTOMER_ID, FLAG))
INQUIRY_RESPONSE = Layout(
    "inquiry response",
    48,
    (
        *INQUIRY_REQUEST.fields,
        PLN_REFERENCE,
        SWITCHER_REFERENCE,
        CUSTOMER_NAME,
        TARIFF,
        POWER_VA,
        _money("admin_fee"),
    ),
)
PURCHASE_REQUEST = Layout("purchase request", 48, (*INQUIRY_RESPONSE.fields, BUYING_OPTION))
PURCHASE_RESPONSE = Layout(
    "purchase response",
    48,
    (
        SWITCHER_ID,
        METER_NUMBER,
        CUSTOMER_ID,
        FLAG,
        PLN_REFERENCE,
        SWITCHER_REFERENCE,
        SubField("vending_receipt", 8, _T),
        CUSTOMER_NAME,
        TARIFF,
        POWER_VA,
        BUYING_OPTION,
        _money("admin_fee"),
        _money("stamp_duty"),
        _money("vat"),
        _money("ppj"),
        _money("instalment"),
        _money("power_purchase", 13),
        _money("kwh", 11, minor=2),
        TOKEN,
    ),
)
#: The meter's verdict on a token, reported to P2APST in an administrative advice (2620).
TOKEN_REPORT = Layout(
    "token report",
    48,
    (
        SWITCHER_ID,
        METER_NUMBER,
        SubField("report_id", 32, _T),
        SWITCHER_REFERENCE,
        TOKEN,
        SubField("accepted", 1, _D),  # 1 accepted, 0 rejected
        SubField("reason", 2, _D),  # TokenReason
        SubField("event_time", 14, _D),  # meter clock, YYYYMMDDhhmmss
        _money("credit_kwh", 11, minor=2),
    ),
)

# --- bit 56 ------------------------------------------------------------------------------
ORIGINAL_DATA = Layout(
    "original data",
    56,
    (
        SubField("original_mti", 4, _D),
        SubField("original_stan", 12, _D),
        SubField("original_datetime", 14, _D),
        SubField("original_bank_code", 7, _D),
    ),
)

# --- bit 62 ------------------------------------------------------------------------------
PRIVATE_DATA_2 = Layout(
    "private data 2",
    62,
    (
        SubField("distribution_code", 2, _D),
        SubField("service_unit", 5, _D),
        SubField("service_unit_phone", 15, _T),
        SubField("max_kwh", 5, _N),
        SubField("total_repeat", 1, _N),
    ),
    repeat=_money("unsold_amounts"),
    count="total_repeat",
)

#: Bit 48 layouts by MTI, most specific first. An error response carries the request's
#: bit 48 back, so responses also accept the request layout (chosen by length).
BIT48_LAYOUTS: Mapping[Mti, tuple[Layout, ...]] = {
    Mti.INQUIRY_REQUEST: (INQUIRY_REQUEST,),
    Mti.INQUIRY_RESPONSE: (INQUIRY_RESPONSE, INQUIRY_REQUEST),
    Mti.PURCHASE_REQUEST: (PURCHASE_REQUEST,),
    Mti.PURCHASE_RESPONSE: (PURCHASE_RESPONSE, PURCHASE_REQUEST),
    Mti.ADVICE: (PURCHASE_REQUEST,),
    Mti.ADVICE_REPEAT: (PURCHASE_REQUEST,),
    Mti.ADVICE_RESPONSE: (PURCHASE_RESPONSE, PURCHASE_REQUEST),
    Mti.ADVICE_REPEAT_RESPONSE: (PURCHASE_RESPONSE, PURCHASE_REQUEST),
    Mti.REPORT_ADVICE: (TOKEN_REPORT,),
    Mti.REPORT_ADVICE_REPEAT: (TOKEN_REPORT,),
    Mti.REPORT_RESPONSE: (TOKEN_REPORT,),
    Mti.REPORT_REPEAT_RESPONSE: (TOKEN_REPORT,),
}


def bit48_layout(mti: str, text: str) -> Layout:
    """The layout of a bit 48 value in a message of type `mti`."""
    try:
        candidates = BIT48_LAYOUTS[Mti(mti)]
    except (ValueError, KeyError):
        raise IsoError(f"message type {mti} has no bit 48 layout", field="48") from None
    for layout in candidates:
        if len(text) == layout.width:
            return layout
    return candidates[0]


def decode_bit48(mti: str, text: str) -> dict[str, object]:
    return bit48_layout(mti, text).decode(text)
