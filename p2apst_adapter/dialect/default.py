"""The shipped dialect (`pln-default.toml`), loaded once, and its layouts by name.

The module-level names are what the client, simulator and tools use when no per-switcher
file is configured; `P2APST` is the whole default `Dialect`.
"""

from __future__ import annotations

from collections.abc import Mapping

from p2apst_adapter.dialect.fields import FieldSpec, Mti
from p2apst_adapter.dialect.loader import load_default
from p2apst_adapter.dialect.private_data import Layout
from p2apst_adapter.dialect.table import Dialect

P2APST: Dialect = load_default()
P2APST_FIELDS: tuple[FieldSpec, ...] = P2APST.fields

AMOUNT = P2APST.layout("amount")
INQUIRY_REQUEST = P2APST.layout("inquiry request")
INQUIRY_RESPONSE = P2APST.layout("inquiry response")
PURCHASE_REQUEST = P2APST.layout("purchase request")
PURCHASE_RESPONSE = P2APST.layout("purchase response")
TOKEN_REPORT = P2APST.layout("token report")
ORIGINAL_DATA = P2APST.layout("original data")
PRIVATE_DATA_2 = P2APST.layout("private data 2")

#: Bit 48 layouts by MTI, most specific first (see `Dialect.bit48`).
BIT48_LAYOUTS: Mapping[Mti, tuple[Layout, ...]] = {
    Mti(mti): layouts for mti, layouts in P2APST.bit48_layouts().items()
}


def bit48_layout(mti: str, text: str, dialect: Dialect = P2APST) -> Layout:
    """The layout of a bit 48 value in a message of type `mti`."""
    return dialect.bit48_layout(mti, text)


def decode_bit48(mti: str, text: str, dialect: Dialect = P2APST) -> dict[str, object]:
    return dialect.bit48_layout(mti, text).decode(text)
