"""The P2APST dialect as data: MTIs and the field table, in one place.

Operators whose switcher document differs build another `Dialect` from their own rows;
everything else (codec, client, simulator) takes the dialect as a parameter.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from typing import Any

from iso8583.specs import default_ascii


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


_N, _ANS = Kind.NUMERIC, Kind.TEXT
_FIX, _LL, _LLL = LengthType.FIXED, LengthType.LLVAR, LengthType.LLLVAR

#: The fields the P2APST dialect overrides or pins down; all others keep pyiso8583's
#: `default_ascii` definition.
P2APST_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(2, _N, _LL, 5, "Product code (99501 postpaid, 99502 prepaid, 99504 non-bill)"),
    FieldSpec(4, _N, _FIX, 16, "Amount: currency 360 + minor-unit digit + 12-digit amount"),
    FieldSpec(11, _N, _FIX, 12, "System trace audit number"),
    FieldSpec(12, _N, _FIX, 14, "Local date-time YYYYMMDDhhmmss"),
    FieldSpec(15, _N, _FIX, 8, "Settlement date YYYYMMDD"),
    FieldSpec(26, _N, _FIX, 4, "Merchant category code"),
    FieldSpec(32, _N, _LL, 7, "Bank code"),
    FieldSpec(33, _N, _LL, 7, "Partner / switcher ID"),
    FieldSpec(39, _N, _FIX, 4, "Response code"),
    FieldSpec(41, _ANS, _FIX, 16, "Terminal ID"),
    FieldSpec(48, _ANS, _LLL, 999, "Private data 1 (per-message layout)"),
    FieldSpec(56, _ANS, _LL, 99, "Original data element"),
    FieldSpec(62, _ANS, _LLL, 999, "Private data 2"),
    FieldSpec(63, _ANS, _LLL, 999, "Info text for the customer's receipt"),
    FieldSpec(70, _N, _FIX, 3, "Network management information code"),
)


@dataclass(frozen=True, slots=True)
class Dialect:
    """A complete field table: pyiso8583's ASCII defaults with `fields` laid over them."""

    fields: tuple[FieldSpec, ...] = P2APST_FIELDS

    def field(self, bit: int) -> FieldSpec | None:
        for spec in self.fields:
            if spec.bit == bit:
                return spec
        return None

    def numeric_bits(self) -> frozenset[int]:
        return frozenset(spec.bit for spec in self.fields if spec.kind is Kind.NUMERIC)

    def pyiso8583_spec(self) -> dict[str, dict[str, Any]]:
        spec: dict[str, dict[str, Any]] = copy.deepcopy(default_ascii)
        for row in self.fields:
            spec[str(row.bit)] = {
                "data_enc": "ascii",
                "len_enc": "ascii",
                "len_type": int(row.length),
                "max_len": row.max_len,
                "desc": row.desc,
            }
        return spec


P2APST = Dialect()
