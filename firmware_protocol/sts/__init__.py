"""STS (IEC 62055-41) prepaid tokens: DKGA02 key derivation, EA07 encryption, classes 0 and 2."""

from firmware_protocol.sts.amount import MAX_TENTHS, round_kwh
from firmware_protocol.sts.dkga02 import KeyData, derive_decoder_key, parse_key_hex
from firmware_protocol.sts.errors import StsError
from firmware_protocol.sts.tid import BaseDate, datetime_from_tid, tid_from_datetime
from firmware_protocol.sts.token import (
    DecodedToken,
    TokenClass,
    TokenFields,
    credit,
    decode,
    encode,
    management,
    token_class_of,
)

__all__ = [
    "MAX_TENTHS",
    "BaseDate",
    "DecodedToken",
    "KeyData",
    "StsError",
    "TokenClass",
    "TokenFields",
    "credit",
    "datetime_from_tid",
    "decode",
    "derive_decoder_key",
    "encode",
    "management",
    "parse_key_hex",
    "round_kwh",
    "tid_from_datetime",
    "token_class_of",
]
