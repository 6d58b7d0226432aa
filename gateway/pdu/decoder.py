"""Decoding PDUs with the two libraries, behind the strict structural pass of `layout`.

`smspdudecoder` reads SMS-SUBMIT, `gsmmodem.pdu` reads SMS-STATUS-REPORT; SMS-DELIVER is read
from the layout pass alone (see `_deliver`).
Their exceptions are turned into PduError in `_library`; smspdudecoder's GSM-7 text is
replaced in `_gsm7_text` (see there why); nothing else in the package touches them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from io import StringIO
from typing import Any, TypeVar

from gsmmodem.pdu import decodeSmsPdu
from smspdudecoder.fields import SMSSubmit

from gateway.pdu import gsm7, layout
from gateway.pdu.errors import PduError
from gateway.pdu.layout import Kind, Layout
from gateway.pdu.model import (
    Concat,
    Decoded,
    DecodedPdu,
    Deliver,
    Encoding,
    StatusReport,
    Submit,
)

_T = TypeVar("_T")
_HEX = re.compile(r"[0-9A-Fa-f]*")
_CONCAT_IEIS = (0x00, 0x08)


def _library(what: str, call: Callable[[], _T]) -> _T:
    """The one place library exceptions (of any class) become PduError."""
    try:
        return call()
    except Exception as error:
        raise PduError(f"{what} failed: {type(error).__name__}: {error}") from error


def _gsm7_text(shape: Layout) -> str:
    """GSM-7 text read from the septets themselves, not taken from smspdudecoder.

    smspdudecoder decodes the whole user data (header included) to characters and then
    slices by *septet* counts, which goes wrong in two ways once a septet is an escape:
    - an extension character (two septets, one character) lets a padding septet through
      as a trailing '@' ('AAAAA€' comes back as 'AAAAA€@');
    - header octets whose bits happen to form an escape septet swallow the first text
      character (part 108 of 108, reference 0, loses its first character).
    """
    assert shape.text_septets is not None
    fill = gsm7.fill_bits(shape.header_octets) if shape.header_octets else 0
    text_octets = shape.user_data[shape.header_octets :]
    return gsm7.decode(gsm7.unpack(text_octets, shape.text_septets, fill))


def _octets(hex_text: str) -> bytes:
    compact = "".join(hex_text.split())
    if not _HEX.fullmatch(compact):
        bad = next(i for i, char in enumerate(compact) if char not in "0123456789abcdefABCDEF")
        raise PduError(f"character {compact[bad]!r} at hex position {bad} is not hexadecimal")
    if len(compact) % 2:
        raise PduError(f"odd number of hex digits ({len(compact)})")
    if not compact:
        raise PduError("empty PDU")
    return bytes.fromhex(compact)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _concat(header: Any) -> Concat | None:
    """The concatenation element, ignored when its counts are impossible (TS 23.040 9.2.3.24.1)."""
    if not header:
        return None
    for element in header.get("elements", []):
        if element["iei"] in _CONCAT_IEIS and isinstance(element["data"], dict):
            ref, total, seq = (
                element["data"]["reference"],
                element["data"]["parts_count"],
                element["data"]["part_number"],
            )
            if total >= 1 and 1 <= seq <= total:
                return Concat(ref=ref, total=total, seq=seq)
    return None


_LIBRARY_ENCODING = {"gsm": Encoding.GSM7, "ucs2": Encoding.UCS2, "binary": Encoding.DATA8}


def _content(shape: Layout, decoded: dict[str, Any]) -> tuple[str | None, bytes | None]:
    payload = decoded["user_data"]["data"]
    if _LIBRARY_ENCODING[decoded["dcs"]["encoding"]] is not shape.encoding:
        raise PduError(f"TP-DCS read as {decoded['dcs']['encoding']}, expected {shape.encoding}")
    if shape.encoding is Encoding.DATA8:
        return None, bytes(payload)
    if shape.encoding is Encoding.GSM7:
        return _gsm7_text(shape), None
    return str(payload), None


def _header_concat(shape: Layout) -> Concat | None:
    """The concatenation element of the header `layout` has checked, read from the octets:
    8-bit (IEI 0) or 16-bit (IEI 8) reference; ignored when its counts are impossible."""
    header = shape.user_data[1 : shape.header_octets]
    at = 0
    while at + 2 <= len(header):
        iei, length = header[at], header[at + 1]
        body = header[at + 2 : at + 2 + length]
        at += 2 + length
        if iei == 0x00 and length == 3:
            ref, total, seq = body[0], body[1], body[2]
        elif iei == 0x08 and length == 4:
            ref, total, seq = body[0] << 8 | body[1], body[2], body[3]
        else:
            continue
        if total >= 1 and 1 <= seq <= total:
            return Concat(ref=ref, total=total, seq=seq)
    return None


def _deliver(shape: Layout, with_smsc: str) -> Deliver:
    """SMS-DELIVER, the hot path of every inbound SMS, read from `layout`'s own strict pass:
    the library adds nothing the layout has not already read (and costs ~80 µs an SMS in
    `bitstring`); tests/gateway/test_pdu_properties.py checks it against smspdudecoder."""
    assert shape.encoding is not None and shape.timestamp is not None
    body = shape.user_data[shape.header_octets :]
    text: str | None = None
    data: bytes | None = None
    if shape.encoding is Encoding.DATA8:
        data = body
    elif shape.encoding is Encoding.GSM7:
        text = _gsm7_text(shape)
    else:
        try:
            text = body.decode("utf-16-be")
        except UnicodeDecodeError as error:
            raise PduError(f"UCS-2 text is not valid UTF-16: {error}") from error
    return Deliver(
        sender=shape.address,
        encoding=shape.encoding,
        text=text,
        data=data,
        concat=_header_concat(shape),
        timestamp=_utc(shape.timestamp),
        smsc=shape.smsc,
    )


def _submit(shape: Layout, with_smsc: str) -> Submit:
    decoded = _library("smspdudecoder SMS-SUBMIT", lambda: SMSSubmit.decode(StringIO(with_smsc)))
    text, data = _content(shape, decoded)
    assert shape.encoding is not None
    return Submit(
        recipient=shape.address,
        encoding=shape.encoding,
        text=text,
        data=data,
        concat=_concat(decoded["user_data"]["header"]),
        message_reference=int(decoded["message-ref"]),
        status_report_requested=bool(decoded["header"]["srr"]),
    )


def _status_report(shape: Layout, with_smsc: str) -> StatusReport:
    decoded = _library("gsmmodem SMS-STATUS-REPORT", lambda: decodeSmsPdu(with_smsc))
    return StatusReport(
        recipient=shape.address,
        message_reference=int(decoded["reference"]),
        status=int(decoded["status"]),
        submitted=_utc(decoded["time"]),
        discharge_time=_utc(decoded["discharge"]),
        smsc=shape.smsc,
    )


_DECODERS: dict[Kind, Callable[[Layout, str], DecodedPdu]] = {
    Kind.DELIVER: _deliver,
    Kind.SUBMIT: _submit,
    Kind.STATUS_REPORT: _status_report,
}


def _decode_as(data: bytes, has_smsc: bool) -> DecodedPdu:
    shape = layout.read(data, has_smsc=has_smsc)
    # Both libraries expect the SMSC part; "00" stands for "none".
    with_smsc = (data if has_smsc else b"\x00" + data).hex().upper()
    return _DECODERS[shape.kind](shape, with_smsc)


def decode(hex_text: str, *, has_smsc: bool | None = None) -> Decoded:
    """Decode a PDU in hex (whitespace ignored). Raises PduError and nothing else.

    `has_smsc=None` detects: the hex is read first as starting with an SMSC part (as
    `AT+CMGR`, `+CMT` and `+CDS` show PDUs), then as a bare TPDU; the first reading whose
    every length matches the octets present wins. All timestamps come back in UTC.
    """
    data = _octets(hex_text)
    if has_smsc is not None:
        return Decoded(_decode_as(data, has_smsc), has_smsc)
    try:
        return Decoded(_decode_as(data, True), True)
    except PduError as with_smsc_error:
        try:
            return Decoded(_decode_as(data, False), False)
        except PduError as bare_error:
            raise PduError(
                f"not a PDU with an SMSC part ({with_smsc_error}) nor a bare TPDU ({bare_error})"
            ) from bare_error
