"""TP-DCS, the concatenation header and TP-UD: choosing the encoding, splitting into parts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.pdu import gsm7
from gateway.pdu.errors import PduError
from gateway.pdu.model import Concat, Encoding

MAX_USER_DATA_OCTETS = 140
MAX_PARTS = 255
IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08

DCS_OF = {Encoding.GSM7: 0x00, Encoding.DATA8: 0x04, Encoding.UCS2: 0x08}
_GENERAL_ALPHABET = {0: Encoding.GSM7, 1: Encoding.DATA8, 2: Encoding.UCS2}


def encoding_of_dcs(dcs: int, offset: int) -> Encoding:
    """Alphabet of a TP-DCS octet; coding groups this gateway cannot read raise PduError."""
    if dcs & 0x80 == 0:  # general data coding (0x00-0x7F; 0x40-0x7F also "auto delete")
        if dcs & 0x20:
            raise PduError(f"TP-DCS 0x{dcs:02X} at offset {offset}: compressed text is unsupported")
        alphabet = (dcs >> 2) & 0x03
        if alphabet in _GENERAL_ALPHABET:
            return _GENERAL_ALPHABET[alphabet]
        raise PduError(f"TP-DCS 0x{dcs:02X} at offset {offset}: reserved alphabet")
    if dcs & 0xF0 == 0xF0 and not dcs & 0x08:  # data coding / message class group
        return Encoding.DATA8 if dcs & 0x04 else Encoding.GSM7
    raise PduError(f"TP-DCS 0x{dcs:02X} at offset {offset}: unsupported coding group")


def concat_element(concat: Concat) -> bytes:
    if not 1 <= concat.total <= MAX_PARTS or not 1 <= concat.seq <= concat.total:
        raise PduError(f"concatenation part {concat.seq} of {concat.total} is out of range")
    if 0 <= concat.ref <= 0xFF:
        return bytes([IEI_CONCAT_8BIT, 3, concat.ref, concat.total, concat.seq])
    if concat.ref <= 0xFFFF:
        return bytes(
            [IEI_CONCAT_16BIT, 4, concat.ref >> 8, concat.ref & 0xFF, concat.total, concat.seq]
        )
    raise PduError(f"concatenation reference {concat.ref} does not fit 16 bits")


@dataclass(frozen=True, slots=True)
class UserData:
    dcs: int
    udl: int  # septets for GSM-7, octets otherwise (TS 23.040 9.2.3.16)
    octets: bytes
    has_header: bool


def _units(encoding: Encoding, text: str | None, data: bytes | None) -> list[tuple[int, ...]]:
    """The payload as indivisible units: a character's septets or UTF-16 octets, or a byte."""
    if encoding is Encoding.DATA8:
        assert data is not None
        return [(octet,) for octet in data]
    assert text is not None
    if encoding is Encoding.GSM7:
        return [tuple(gsm7.encode(char)) for char in text]
    # One unit per character keeps a surrogate pair in one part.
    return [tuple(char.encode("utf-16-be")) for char in text]


def build(encoding: Encoding, units: Sequence[tuple[int, ...]], concat: Concat | None) -> UserData:
    payload = [value for unit in units for value in unit]
    header = b""
    if concat is not None:
        element = concat_element(concat)
        header = bytes([len(element)]) + element
    if encoding is Encoding.GSM7:
        header_septets = (len(header) * 8 + 6) // 7
        octets = header + gsm7.pack(payload, gsm7.fill_bits(len(header)) if header else 0)
        udl = header_septets + len(payload)
    else:
        octets = header + bytes(payload)
        udl = len(octets)
    if len(octets) > MAX_USER_DATA_OCTETS:
        raise PduError(f"user data needs {len(octets)} octets, one SMS carries 140")
    return UserData(DCS_OF[encoding], udl, octets, concat is not None)


def capacity(encoding: Encoding, header_octets: int) -> int:
    """Payload units' size (septets or octets) that fit next to a header of that many octets."""
    room = MAX_USER_DATA_OCTETS - header_octets
    return room * 8 // 7 if encoding is Encoding.GSM7 else room


def choose_encoding(text: str | None, data: bytes | None) -> Encoding:
    if (text is None) == (data is None):
        raise PduError("give exactly one of text or data")
    if data is not None:
        return Encoding.DATA8
    assert text is not None
    return Encoding.GSM7 if gsm7.can_encode(text) else Encoding.UCS2


def payload_units(
    text: str | None, data: bytes | None, encoding: Encoding | None = None
) -> tuple[Encoding, list[tuple[int, ...]]]:
    """The encoding and units of a payload: the one `encoding` asks for, else the smallest
    that carries it. Only GSM-7 text may be asked to go as UCS-2 (as the other parts of a
    long UCS-2 message do); any other mismatch raises PduError."""
    chosen = choose_encoding(text, data)
    if encoding is not None and encoding is not chosen:
        if not (encoding is Encoding.UCS2 and chosen is Encoding.GSM7):
            raise PduError(f"a {chosen} payload cannot be encoded as {encoding}")
        chosen = encoding
    return chosen, _units(chosen, text, data)


def split(encoding: Encoding, units: list[tuple[int, ...]], concat_ref: int) -> list[UserData]:
    """One part without header if it fits, otherwise parts with a concatenation header."""
    if sum(len(unit) for unit in units) <= capacity(encoding, 0):
        return [build(encoding, units, None)]
    header_octets = 1 + len(concat_element(Concat(concat_ref, 1, 1)))
    room = capacity(encoding, header_octets)
    chunks: list[list[tuple[int, ...]]] = [[]]
    used = 0
    for unit in units:
        if used + len(unit) > room:
            chunks.append([])
            used = 0
        chunks[-1].append(unit)
        used += len(unit)
    if len(chunks) > MAX_PARTS:
        raise PduError(f"message needs {len(chunks)} parts, the concatenation header allows 255")
    return [
        build(encoding, chunk, Concat(concat_ref, len(chunks), seq))
        for seq, chunk in enumerate(chunks, start=1)
    ]
