"""The P2APST ISO 8583 dialect: field table, bit 48/56/62 layouts (data, from a dialect file),
response codes, framing."""

from p2apst_adapter.dialect.default import (
    AMOUNT,
    BIT48_LAYOUTS,
    INQUIRY_REQUEST,
    INQUIRY_RESPONSE,
    ORIGINAL_DATA,
    P2APST,
    P2APST_FIELDS,
    PRIVATE_DATA_2,
    PURCHASE_REQUEST,
    PURCHASE_RESPONSE,
    TOKEN_REPORT,
    bit48_layout,
    decode_bit48,
)
from p2apst_adapter.dialect.document import message_document
from p2apst_adapter.dialect.errors import IsoError
from p2apst_adapter.dialect.fields import (
    CURRENCY_IDR,
    MERCHANT_CATEGORY,
    FieldSpec,
    Kind,
    LengthType,
    Mti,
    NetworkCode,
    ProductCode,
)
from p2apst_adapter.dialect.framing import MAX_MESSAGE, Deframer, Framing, frame
from p2apst_adapter.dialect.loader import (
    DialectFileError,
    default_dialect_text,
    load_dialect,
    parse_dialect,
)
from p2apst_adapter.dialect.message import IsoMessage, decode, encode
from p2apst_adapter.dialect.private_data import Layout, SubField, SubKind
from p2apst_adapter.dialect.response_codes import (
    RESPONSE_CODES,
    CodeInfo,
    ResponseCode,
    customer_text,
    describe,
)
from p2apst_adapter.dialect.table import Dialect

__all__ = [
    "AMOUNT",
    "BIT48_LAYOUTS",
    "CURRENCY_IDR",
    "INQUIRY_REQUEST",
    "INQUIRY_RESPONSE",
    "MAX_MESSAGE",
    "MERCHANT_CATEGORY",
    "ORIGINAL_DATA",
    "P2APST",
    "P2APST_FIELDS",
    "PRIVATE_DATA_2",
    "PURCHASE_REQUEST",
    "PURCHASE_RESPONSE",
    "RESPONSE_CODES",
    "TOKEN_REPORT",
    "CodeInfo",
    "Deframer",
    "Dialect",
    "DialectFileError",
    "FieldSpec",
    "Framing",
    "IsoError",
    "IsoMessage",
    "Kind",
    "Layout",
    "LengthType",
    "Mti",
    "NetworkCode",
    "ProductCode",
    "ResponseCode",
    "SubField",
    "SubKind",
    "bit48_layout",
    "customer_text",
    "decode",
    "decode_bit48",
    "default_dialect_text",
    "describe",
    "encode",
    "frame",
    "load_dialect",
    "message_document",
    "parse_dialect",
]
