"""Strict structural reading of a PDU: every length checked against the octets present.

The libraries decode the content; this pass decides whether the hex starts with an SMSC
part, rejects malformed input with the field and offset at fault, and reads the fields the
libraries get wrong or don't expose (addresses, the septet count of GSM-7 text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.pdu import fields, user_data
from gateway.pdu.errors import PduError
from gateway.pdu.model import Encoding

MAX_GSM7_SEPTETS = 160


class Kind(StrEnum):
    DELIVER = "deliver"
    SUBMIT = "submit"
    STATUS_REPORT = "status-report"


_KIND_OF_MTI = {0: Kind.DELIVER, 1: Kind.SUBMIT, 2: Kind.STATUS_REPORT}
# TP-VPF (first octet bits 4-3) -> octets of TP-VP
_VP_OCTETS = {0: 0, 1: 7, 2: 1, 3: 7}


@dataclass(frozen=True, slots=True)
class Layout:
    kind: Kind
    smsc: str | None
    address: str  # originator, destination or recipient, "+..." when international
    encoding: Encoding | None  # None for status reports
    text_septets: int | None  # GSM-7 only: septets of text after the header
    user_data: bytes = b""  # TP-UD including the header
    header_octets: int = 0  # the header with its UDHL octet, 0 without one
    timestamp: datetime | None = None  # TP-SCTS of an SMS-DELIVER


class _Reader:
    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.offset = offset

    def octet(self, field: str) -> int:
        if self.offset >= len(self.data):
            raise PduError(f"{field}: missing at offset {self.offset} (PDU has {len(self.data)})")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def skip(self, count: int, field: str) -> bytes:
        if self.offset + count > len(self.data):
            raise PduError(
                f"{field}: needs {count} octet(s) at offset {self.offset}, "
                f"the PDU has {len(self.data)}"
            )
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def address(self, field: str) -> str:
        span = fields.decode_address(self.data, self.offset, field)
        self.offset = span.end
        return span.value or ""

    def timestamp(self, field: str) -> datetime:
        moment = fields.decode_timestamp(self.data, self.offset, field)
        self.offset += fields.TIMESTAMP_OCTETS
        return moment

    def end(self) -> None:
        if self.offset != len(self.data):
            raise PduError(
                f"{len(self.data) - self.offset} unexpected octet(s) after the end at offset "
                f"{self.offset}"
            )


def _header_octets(reader: _Reader, ud_octets: int) -> int:
    """Checks the user data header's elements; returns its size including the UDHL octet."""
    start = reader.offset
    udhl = reader.octet("UDHL")
    if udhl + 1 > ud_octets:
        raise PduError(f"UDHL {udhl} at offset {start} exceeds the user data ({ud_octets} octets)")
    end = reader.offset + udhl
    while reader.offset < end:
        iei_at = reader.offset
        reader.octet("UDH element identifier")
        length = reader.octet("UDH element length")
        if reader.offset + length > end:
            raise PduError(f"UDH element at offset {iei_at} runs past the header end {end}")
        reader.skip(length, "UDH element")
    return udhl + 1


@dataclass(frozen=True, slots=True)
class _UserData:
    octets: bytes
    header_octets: int
    text_septets: int | None


def _user_data(reader: _Reader, encoding: Encoding, udhi: bool) -> _UserData:
    udl_at = reader.offset
    udl = reader.octet("TP-UDL")
    if encoding is Encoding.GSM7:
        if udl > MAX_GSM7_SEPTETS:
            raise PduError(f"TP-UDL {udl} at offset {udl_at} exceeds 160 septets")
        ud_octets = (udl * 7 + 7) // 8
    else:
        if udl > user_data.MAX_USER_DATA_OCTETS:
            raise PduError(f"TP-UDL {udl} at offset {udl_at} exceeds 140 octets")
        ud_octets = udl
    remaining = len(reader.data) - reader.offset
    if remaining != ud_octets:
        raise PduError(
            f"TP-UDL {udl} at offset {udl_at} announces {ud_octets} octet(s) of user data, "
            f"{remaining} follow"
        )
    start = reader.offset
    header = _header_octets(reader, ud_octets) if udhi and ud_octets else 0
    if udhi and not ud_octets:
        raise PduError(f"TP-UDHI is set but TP-UDL at offset {udl_at} is 0")
    reader.offset = start + ud_octets
    octets = reader.data[start : reader.offset]
    if encoding is Encoding.GSM7:
        header_septets = (header * 8 + 6) // 7
        if header_septets > udl:
            raise PduError(f"TP-UDL {udl} at offset {udl_at} is shorter than the header")
        return _UserData(octets, header, udl - header_septets)
    if encoding is Encoding.UCS2 and (ud_octets - header) % 2:
        raise PduError(f"UCS-2 text after offset {start + header} has an odd number of octets")
    return _UserData(octets, header, None)


def _status_report_tail(reader: _Reader) -> None:
    """Optional TP-PI and the fields it announces (TS 23.040 9.2.2.3)."""
    if reader.offset == len(reader.data):
        return
    indicator = reader.octet("TP-PI")
    if indicator & 0x01:
        reader.octet("TP-PID")
    encoding = Encoding.GSM7
    if indicator & 0x02:
        dcs_at = reader.offset
        encoding = user_data.encoding_of_dcs(reader.octet("TP-DCS"), dcs_at)
    if indicator & 0x04:
        _user_data(reader, encoding, udhi=False)


def read(data: bytes, *, has_smsc: bool) -> Layout:
    reader = _Reader(data, 0)
    smsc: str | None = None
    if has_smsc:
        span = fields.decode_smsc(data, 0)
        smsc, reader.offset = span.value, span.end
    first_at = reader.offset
    first = reader.octet("first octet")
    kind = _KIND_OF_MTI.get(first & 0x03)
    if kind is None:
        raise PduError(f"first octet 0x{first:02X} at offset {first_at}: reserved TP-MTI 3")
    udhi = bool(first & 0x40)
    if kind is Kind.STATUS_REPORT:
        reader.octet("TP-MR")
        address = reader.address("TP-RA")
        reader.timestamp("TP-SCTS")
        reader.timestamp("TP-DT")
        reader.octet("TP-ST")
        _status_report_tail(reader)
        reader.end()
        return Layout(kind, smsc, address, None, None)
    if kind is Kind.SUBMIT:
        reader.octet("TP-MR")
        address = reader.address("TP-DA")
    else:
        address = reader.address("TP-OA")
    reader.octet("TP-PID")
    dcs_at = reader.offset
    encoding = user_data.encoding_of_dcs(reader.octet("TP-DCS"), dcs_at)
    scts: datetime | None = None
    if kind is Kind.SUBMIT:
        vpf = (first >> 3) & 0x03
        if vpf == 3:
            reader.timestamp("TP-VP")
        else:
            reader.skip(_VP_OCTETS[vpf], "TP-VP")
    else:
        scts = reader.timestamp("TP-SCTS")
    content = _user_data(reader, encoding, udhi)
    reader.end()
    return Layout(
        kind,
        smsc,
        address,
        encoding,
        content.text_septets,
        content.octets,
        content.header_octets,
        scts,
    )
