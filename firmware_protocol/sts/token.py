"""20-digit STS tokens: the 64-bit data block, EA07 encryption and the class-bit transposition."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum

from firmware_protocol.sts import amount, ea07
from firmware_protocol.sts.crc import token_crc
from firmware_protocol.sts.errors import StsError
from firmware_protocol.sts.tid import TID_MAX, BaseDate, datetime_from_tid, tid_from_datetime

TOKEN_DIGITS = 20
_TOKEN_BITS = 66
_CLASS_BIT_1 = 28  # class bit 1 travels in the clear at this bit of the encrypted block
_CLASS_BIT_0 = 27


class TokenClass(IntEnum):
    CREDIT = 0
    METER_TEST = 1
    MANAGEMENT = 2
    RESERVED = 3


#: Classes whose 16-bit field this codec understands (amount, or management register).
SUPPORTED_CLASSES = (TokenClass.CREDIT, TokenClass.MANAGEMENT)


@dataclass(frozen=True, slots=True)
class TokenFields:
    """The clear contents of a token. `field` is the raw 16-bit amount or register field."""

    token_class: TokenClass
    subclass: int
    rnd: int
    tid: int
    field: int

    def __post_init__(self) -> None:
        if self.token_class not in SUPPORTED_CLASSES:
            raise StsError(f"token class {int(self.token_class)} is not supported (only 0 and 2)")
        for name, value, bits in (
            ("subclass", self.subclass, 4),
            ("rnd", self.rnd, 4),
            ("tid", self.tid, 24),
            ("field", self.field, 16),
        ):
            if not 0 <= value < 1 << bits:
                raise StsError(f"{name} {value} does not fit {bits} bits")

    @property
    def amount_tenths(self) -> int:
        self._require(TokenClass.CREDIT, "an amount")
        return amount.field_to_tenths(self.field)

    @property
    def amount_kwh(self) -> Decimal:
        return amount.tenths_to_kwh(self.amount_tenths)

    @property
    def register(self) -> int:
        self._require(TokenClass.MANAGEMENT, "a register value")
        return self.field

    def issued_at(self, base: BaseDate) -> datetime:
        return datetime_from_tid(self.tid, base)

    def _require(self, wanted: TokenClass, what: str) -> None:
        if self.token_class is not wanted:
            raise StsError(f"a class {int(self.token_class)} token carries no {what}")


@dataclass(frozen=True, slots=True)
class DecodedToken:
    fields: TokenFields
    crc: int
    crc_ok: bool


def credit(
    subclass: int, rnd: int, issued_at: datetime, kwh: Decimal, base: BaseDate
) -> TokenFields:
    """A class 0 (credit transfer) token; the amount is rounded up as the standard says."""
    field = amount.tenths_to_field(amount.kwh_to_tenths(kwh))
    return TokenFields(TokenClass.CREDIT, subclass, rnd, tid_from_datetime(issued_at, base), field)


def management(
    subclass: int, rnd: int, issued_at: datetime, register: int, base: BaseDate
) -> TokenFields:
    """A class 2 (meter management) token, e.g. subclass 5 = clear tamper condition."""
    tid = tid_from_datetime(issued_at, base)
    return TokenFields(TokenClass.MANAGEMENT, subclass, rnd, tid, register)


def _data_block(fields: TokenFields) -> int:
    crc = token_crc(fields.token_class, fields.subclass, fields.rnd, fields.tid, fields.field)
    return fields.subclass << 60 | fields.rnd << 56 | fields.tid << 32 | fields.field << 16 | crc


def encode(fields: TokenFields, decoder_key: int) -> str:
    encrypted = ea07.encrypt(_data_block(fields), decoder_key)
    moved_1 = encrypted >> _CLASS_BIT_1 & 1
    moved_0 = encrypted >> _CLASS_BIT_0 & 1
    cls = int(fields.token_class)
    block = encrypted & ~(1 << _CLASS_BIT_1 | 1 << _CLASS_BIT_0)
    block |= (cls >> 1 & 1) << _CLASS_BIT_1 | (cls & 1) << _CLASS_BIT_0
    number = moved_1 << 65 | moved_0 << 64 | block
    return f"{number:0{TOKEN_DIGITS}d}"


def parse_number(token: str) -> int:
    digits = re.sub(r"[\s-]", "", token)
    if not re.fullmatch(rf"[0-9]{{{TOKEN_DIGITS}}}", digits):
        raise StsError(f"a token is {TOKEN_DIGITS} digits, got {token!r}")
    number = int(digits)
    if number >= 1 << _TOKEN_BITS:
        raise StsError(f"token {digits} is larger than {_TOKEN_BITS} bits")
    return number


def token_class_of(token: str) -> TokenClass:
    """The class of a token, readable without the key."""
    number = parse_number(token)
    return TokenClass((number >> _CLASS_BIT_1 & 1) << 1 | (number >> _CLASS_BIT_0 & 1))


def decode(token: str, decoder_key: int) -> DecodedToken:
    """Decrypts a token. A wrong key or a typo shows as `crc_ok=False`, not as an error."""
    number = parse_number(token)
    cls = TokenClass((number >> _CLASS_BIT_1 & 1) << 1 | (number >> _CLASS_BIT_0 & 1))
    if cls not in SUPPORTED_CLASSES:
        raise StsError(f"token class {int(cls)} is not supported (only 0 and 2)")
    block = number & ((1 << 64) - 1) & ~(1 << _CLASS_BIT_1 | 1 << _CLASS_BIT_0)
    block |= (number >> 65 & 1) << _CLASS_BIT_1 | (number >> 64 & 1) << _CLASS_BIT_0
    clear = ea07.decrypt(block, decoder_key)
    fields = TokenFields(
        token_class=cls,
        subclass=clear >> 60 & 0xF,
        rnd=clear >> 56 & 0xF,
        tid=clear >> 32 & TID_MAX,
        field=clear >> 16 & 0xFFFF,
    )
    crc = clear & 0xFFFF
    expected = token_crc(cls, fields.subclass, fields.rnd, fields.tid, fields.field)
    return DecodedToken(fields=fields, crc=crc, crc_ok=crc == expected)
