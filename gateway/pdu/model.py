"""What the codec takes and returns: encodings, concatenation headers, decoded TPDUs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"
    DATA8 = "8bit"


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation header of one part: reference, number of parts, 1-based part number."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class SubmitPart:
    """One SMS-SUBMIT ready for `AT+CMGS=<tpdu_length>`; `hex` starts with "00" (default SMSC)."""

    hex: str
    tpdu_length: int


@dataclass(frozen=True, slots=True)
class Deliver:
    sender: str
    encoding: Encoding
    text: str | None
    data: bytes | None
    concat: Concat | None
    timestamp: datetime
    smsc: str | None


@dataclass(frozen=True, slots=True)
class Submit:
    recipient: str
    encoding: Encoding
    text: str | None
    data: bytes | None
    concat: Concat | None
    message_reference: int
    status_report_requested: bool


@dataclass(frozen=True, slots=True)
class StatusReport:
    """`status` is TP-ST: 0 delivered, 0x20-0x3F temporary failure, 0x40-0x7F permanent failure."""

    recipient: str
    message_reference: int
    status: int
    submitted: datetime
    discharge_time: datetime
    smsc: str | None


DecodedPdu = Deliver | Submit | StatusReport


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded PDU; `smsc_part_assumed` is True when the hex was read as starting with an
    SMSC address field (as `AT+CMGR` shows it), False when it was read as a bare TPDU."""

    pdu: DecodedPdu
    smsc_part_assumed: bool
