"""TPDU fields built from semi-octets: addresses (TS 23.040 9.1.2.5) and timestamps (9.2.3.11)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum

from gateway.pdu import gsm7
from gateway.pdu.errors import PduError


class TypeOfAddress(IntEnum):
    UNKNOWN_ISDN = 0x81  # national / "as dialled" numbers
    INTERNATIONAL = 0x91
    ALPHANUMERIC = 0xD0


_TON_MASK = 0x70
_TON_INTERNATIONAL = 0x10
_TON_ALPHANUMERIC = 0x50
MAX_ADDRESS_DIGITS = 20
MAX_ALPHANUMERIC_CHARS = 11
# Semi-octet digits beyond 0-9 (TS 23.040 9.1.2.3); F is the filler of an odd-length number.
_DIGITS = "0123456789*#abc"
_NUMBER = re.compile(r"\+?[0-9*#]{1,20}")


def _swap_digits(digits: str) -> bytes:
    padded = digits + "F" if len(digits) % 2 else digits
    codes = ["0123456789*#abcF".index(char) for char in padded]
    return bytes(low | high << 4 for low, high in zip(codes[::2], codes[1::2], strict=True))


def _read_digits(octets: bytes, count: int) -> str:
    digits: list[str] = []
    for index in range(count):
        octet = octets[index // 2]
        nibble = octet & 0x0F if index % 2 == 0 else octet >> 4
        if nibble == 0x0F:  # some modems count the filler in the length; it ends the number
            break
        digits.append(_DIGITS[nibble])
    return "".join(digits)


def encode_address(address: str, *, allow_alphanumeric: bool) -> bytes:
    """TP-OA / TP-DA / TP-RA: "+62..." international, digits national, otherwise alphanumeric."""
    if _NUMBER.fullmatch(address):
        international = address.startswith("+")
        digits = address[1:] if international else address
        toa = TypeOfAddress.INTERNATIONAL if international else TypeOfAddress.UNKNOWN_ISDN
        return bytes([len(digits), toa]) + _swap_digits(digits)
    if not allow_alphanumeric:
        raise PduError(f"address {address!r} is not a phone number (+ and up to 20 digits)")
    if not 1 <= len(address) <= MAX_ALPHANUMERIC_CHARS:
        raise PduError(f"alphanumeric address {address!r} must have 1-11 characters")
    septets = gsm7.encode(address)
    # The length counts the semi-octets that carry septet bits.
    return bytes([(len(septets) * 7 + 3) // 4, TypeOfAddress.ALPHANUMERIC]) + gsm7.pack(septets)


def encode_smsc(smsc: str | None) -> bytes:
    """SMSC address field: "00" (the modem's default) or length in octets, TOA, digits."""
    if smsc is None:
        return b"\x00"
    if not _NUMBER.fullmatch(smsc):
        raise PduError(f"SMSC address {smsc!r} is not a phone number")
    international = smsc.startswith("+")
    digits = smsc[1:] if international else smsc
    body = _swap_digits(digits)
    toa = TypeOfAddress.INTERNATIONAL if international else TypeOfAddress.UNKNOWN_ISDN
    return bytes([len(body) + 1, toa]) + body


@dataclass(frozen=True, slots=True)
class Span:
    """A decoded field and the offset just after it."""

    value: str | None
    end: int


def _need(data: bytes, offset: int, count: int, field: str) -> bytes:
    if offset + count > len(data):
        raise PduError(
            f"{field}: needs {count} octet(s) at offset {offset}, the PDU has {len(data)}"
        )
    return data[offset : offset + count]


def _check_toa(toa: int, offset: int, field: str) -> None:
    if not toa & 0x80:
        raise PduError(f"{field}: type of address 0x{toa:02X} at offset {offset} lacks bit 7")


def decode_address(data: bytes, offset: int, field: str) -> Span:
    length = _need(data, offset, 1, field)[0]
    if length > MAX_ADDRESS_DIGITS:
        raise PduError(f"{field}: length {length} at offset {offset} exceeds 20 semi-octets")
    toa = _need(data, offset + 1, 1, field)[0]
    _check_toa(toa, offset + 1, field)
    body = _need(data, offset + 2, (length + 1) // 2, field)
    end = offset + 2 + len(body)
    if toa & _TON_MASK == _TON_ALPHANUMERIC:
        return Span(gsm7.decode(gsm7.unpack(body, length * 4 // 7)), end)
    digits = _read_digits(body, length)
    return Span("+" + digits if toa & _TON_MASK == _TON_INTERNATIONAL else digits, end)


def decode_smsc(data: bytes, offset: int) -> Span:
    field = "SMSC address"
    length = _need(data, offset, 1, field)[0]
    if length == 0:
        return Span(None, offset + 1)
    if length > 11:
        raise PduError(f"{field}: length {length} at offset {offset} exceeds 11 octets")
    toa = _need(data, offset + 1, 1, field)[0]
    _check_toa(toa, offset + 1, field)
    body = _need(data, offset + 2, length - 1, field)
    count = 2 * len(body) - (1 if body and body[-1] >> 4 == 0x0F else 0)
    digits = _read_digits(body, count)
    return Span(
        "+" + digits if toa & _TON_MASK == _TON_INTERNATIONAL else digits, offset + 1 + length
    )


TIMESTAMP_OCTETS = 7
_MAX_QUARTERS = 79  # two BCD digits, the top bit of the first one is the sign


def encode_timestamp(moment: datetime) -> bytes:
    """Service-centre time stamp: local time as swapped BCD plus the UTC offset in quarter hours."""
    offset = moment.utcoffset()
    if offset is None:
        raise PduError("timestamp must carry a time zone (TS 23.040 sends the UTC offset)")
    minutes = offset.total_seconds() / 60
    if minutes % 15 or abs(minutes) / 15 > _MAX_QUARTERS:
        raise PduError(
            f"timestamp UTC offset {offset} is not a multiple of 15 minutes up to ±19:45"
        )
    if not 2000 <= moment.year <= 2099:
        raise PduError(f"timestamp year {moment.year} is outside 2000-2099")
    quarters = int(abs(minutes) // 15)
    fields = (
        moment.year % 100,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )
    octets = bytearray(_swap_digits(f"{value:02d}")[0] for value in fields)
    octets.append(_swap_digits(f"{quarters:02d}")[0] | (0x08 if minutes < 0 else 0))
    return bytes(octets)


def decode_timestamp(data: bytes, offset: int, field: str) -> datetime:
    octets = _need(data, offset, TIMESTAMP_OCTETS, field)
    values: list[int] = []
    for index, octet in enumerate(octets):
        low, high = octet & 0x0F, octet >> 4
        if index == TIMESTAMP_OCTETS - 1:
            negative = bool(low & 0x08)
            low &= 0x07
        if low > 9 or high > 9:
            raise PduError(f"{field}: octet 0x{octet:02X} at offset {offset + index} is not BCD")
        values.append(low * 10 + high)
    year, month, day, hour, minute, second, quarters = values
    try:
        zone = timezone(timedelta(minutes=(-15 if negative else 15) * quarters))
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as error:
        raise PduError(f"{field} at offset {offset}: {error}") from error
