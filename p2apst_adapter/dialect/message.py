"""Whole messages: an MTI and its fields, to and from bytes via pyiso8583.

This is the one place where pyiso8583's errors (and anything else it raises on hostile
input) become `IsoError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import iso8583

from p2apst_adapter.dialect.default import P2APST
from p2apst_adapter.dialect.errors import IsoError
from p2apst_adapter.dialect.table import Dialect

_MTI = re.compile(r"[0-9]{4}")
_DIGITS = re.compile(r"[0-9]*")


@dataclass(frozen=True, slots=True)
class IsoMessage:
    """One ISO 8583 message; `fields` maps bit numbers (2..128) to their text."""

    mti: str
    fields: Mapping[int, str] = field(default_factory=dict)

    def get(self, bit: int) -> str | None:
        return self.fields.get(bit)

    def require(self, bit: int) -> str:
        value = self.fields.get(bit)
        if value is None:
            raise IsoError(f"message {self.mti} lacks field {bit}", field=str(bit))
        return value

    @property
    def stan(self) -> str | None:
        return self.fields.get(11)

    @property
    def response_code(self) -> str | None:
        return self.fields.get(39)

    def with_fields(self, mti: str | None = None, **changes: str | None) -> IsoMessage:
        """A copy with another MTI and fields set (`f39="0000"`) or removed (`f62=None`)."""
        updated = dict(self.fields)
        for name, value in changes.items():
            bit = int(name.removeprefix("f"))
            if value is None:
                updated.pop(bit, None)
            else:
                updated[bit] = value
        return IsoMessage(mti or self.mti, updated)


@cache
def _spec(dialect: Dialect) -> dict[str, dict[str, Any]]:
    return dialect.pyiso8583_spec()


def _check_numeric(message: IsoMessage, dialect: Dialect) -> None:
    for bit in sorted(dialect.numeric_bits() & message.fields.keys()):
        if not _DIGITS.fullmatch(message.fields[bit]):
            raise IsoError(
                f"field {bit} must hold digits only, got {message.fields[bit]!r}", field=str(bit)
            )


def encode(message: IsoMessage, dialect: Dialect = P2APST) -> bytes:
    if not _MTI.fullmatch(message.mti):
        raise IsoError(f"MTI must be 4 digits, got {message.mti!r}", field="t")
    for bit in message.fields:
        if not 2 <= bit <= 128:
            raise IsoError(f"there is no field {bit} (2..128)", field=str(bit))
    _check_numeric(message, dialect)
    doc: dict[str, Any] = {"t": message.mti}
    doc.update({str(bit): value for bit, value in message.fields.items()})
    try:
        data, _ = iso8583.encode(doc, _spec(dialect))
    except iso8583.EncodeError as error:
        raise IsoError(error.msg, field=error.field) from error
    return bytes(data)


def decode(data: bytes, dialect: Dialect = P2APST) -> IsoMessage:
    """Decodes one unframed message; anything malformed raises `IsoError`."""
    try:
        doc, _ = iso8583.decode(bytes(data), _spec(dialect))
    except iso8583.DecodeError as error:
        raise IsoError(error.msg, field=error.field, offset=error.pos) from error
    except KeyError as error:
        # iso8583 looks each bit of the bitmap up in the spec: a bit set beyond the
        # dialect's fields (a tertiary bitmap, say) escapes as a bare KeyError.
        field = str(error.args[0]) if error.args else "?"
        raise IsoError(
            f"the bitmap names field {field}, which the dialect has not", field=field
        ) from error
    except Exception as error:  # whatever else the library lets through: still our error
        raise IsoError(f"malformed message ({type(error).__name__}: {error})") from error
    mti = doc.get("t", "")
    if not _MTI.fullmatch(mti):
        raise IsoError(f"MTI must be 4 digits, got {mti!r}", field="t", offset=0)
    fields = {int(key): value for key, value in doc.items() if key.isdigit() and key != "1"}
    message = IsoMessage(mti, fields)
    _check_numeric(message, dialect)
    return message
