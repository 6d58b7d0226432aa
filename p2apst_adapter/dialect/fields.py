"""The vocabulary of the P2APST dialect: MTIs, codes and the row type of the field table.

The rows themselves are data: the shipped `pln-default.toml` (or an operator's own file,
see `loader`) fills a `Dialect` with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum


class Mti(StrEnum):
    """ISO 8583:2003-style message types (version digit 2)."""

    NETWORK_REQUEST = "2800"
    NETWORK_RESPONSE = "2810"
    INQUIRY_REQUEST = "2100"
    INQUIRY_RESPONSE = "2110"
    PURCHASE_REQUEST = "2200"
    PURCHASE_RESPONSE = "2210"
    ADVICE = "2220"
    ADVICE_RESPONSE = "2230"
    ADVICE_REPEAT = "2221"
    ADVICE_REPEAT_RESPONSE = "2231"
    # Class 6 = administrative: carries information, moves no money, so it never needs a
    # reversal; x620 is the administrative *advice* (the sender does not need a decision)
    # and x621 its repeat, mirroring 2220/2221.
    REPORT_ADVICE = "2620"
    REPORT_ADVICE_REPEAT = "2621"
    REPORT_RESPONSE = "2630"
    REPORT_REPEAT_RESPONSE = "2631"

    @property
    def is_request(self) -> bool:
        return self.value[2] in "02"

    def response(self) -> Mti:
        """The MTI that answers this request (function digit + 1)."""
        if not self.is_request:
            raise ValueError(f"{self.value} is not a request")
        return Mti(self.value[:2] + str(int(self.value[2]) + 1) + self.value[3])


class NetworkCode(StrEnum):
    """Bit 70, network management information code."""

    SIGN_ON = "001"
    SIGN_OFF = "002"
    ECHO = "301"


class Kind(Enum):
    """ISO 8583 attribute of a field's content; `n` fields must hold digits only."""

    NUMERIC = "n"
    TEXT = "ans"


class LengthType(IntEnum):
    FIXED = 0
    LLVAR = 2
    LLLVAR = 3


class ProductCode(StrEnum):
    """Bit 2."""

    POSTPAID = "99501"
    PREPAID = "99502"
    NON_BILL = "99504"


CURRENCY_IDR = "360"
MERCHANT_CATEGORY = "6021"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    bit: int
    kind: Kind
    length: LengthType
    max_len: int
    desc: str
    #: How the field's bytes become text. `latin-1` takes any byte, for informational text
    #: (bit 63) that a switcher may fill with whatever its receipt printer accepts.
    encoding: str = "ascii"
