"""What goes into submit_sm and comes out of deliver_sm (or data_sm): data_coding,
splitting, receipts.

With data_coding 0 the short_message holds GSM-7 septets one per octet (unpacked), which is
what SMSCs expect over SMPP; UCS-2 is big-endian; 8-bit data is sent as is (data_coding 4).
A message too long for one submit_sm is either split with a concatenation UDH (esm_class
UDHI) or sent whole in the message_payload TLV, as the SMSC prefers.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

from gateway.pdu import gsm7
from gateway.pdu.errors import PduError
from gateway.smpp.pdu import Command, Pdu, SmppError, Tag
from gateway.transport import OutboundSms

ESM_UDHI = 0x40
ESM_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04
SHORT_MESSAGE_MAX = 140  # octets, as on the air interface
UDH_CONCAT_LENGTH = 6  # 05 00 03 ref total seq


#: SMSC-to-ESME commands that carry a message (MO or receipt) and how each is answered.
DELIVERIES = {Command.DELIVER_SM: Command.DELIVER_SM_RESP, Command.DATA_SM: Command.DATA_SM_RESP}


def user_data(pdu: Pdu) -> bytes:
    """The message octets of a deliver_sm or data_sm: the message_payload TLV when present
    (always, for data_sm, which has no short_message), else short_message."""
    return pdu.tlvs.get(Tag.MESSAGE_PAYLOAD) or pdu.octets("short_message")


class DataCoding(IntEnum):
    DEFAULT = 0x00  # SMSC default alphabet: GSM-7, unpacked
    OCTETS = 0x04
    UCS2 = 0x08


class LongMessages(StrEnum):
    UDH = "udh"  # split, concatenation user data header in each part
    PAYLOAD = "payload"  # one submit_sm, the whole text in message_payload


@dataclass(frozen=True, slots=True)
class Part:
    data_coding: DataCoding
    short_message: bytes
    esm_class: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)


def _body(sms: OutboundSms) -> tuple[DataCoding, bytes, int]:
    """Coding, octets and the octets one unit (character) takes at most."""
    if sms.data is not None:
        return DataCoding.OCTETS, sms.data, 1
    text = sms.text or ""
    if gsm7.can_encode(text):
        return DataCoding.DEFAULT, bytes(gsm7.encode(text)), 1
    return DataCoding.UCS2, text.encode("utf-16-be"), 2


def _capacity(coding: DataCoding) -> int:
    # Unpacked GSM-7: 160 septets fit the 140 air octets.
    return 160 if coding is DataCoding.DEFAULT else SHORT_MESSAGE_MAX


def split(sms: OutboundSms, reference: int, mode: LongMessages = LongMessages.UDH) -> list[Part]:
    """The submit_sm bodies for one SMS; `reference` (0-255) ties concatenated parts."""
    coding, octets, _ = _body(sms)
    capacity = _capacity(coding)
    if len(octets) <= capacity:
        return [Part(coding, octets)]
    if mode is LongMessages.PAYLOAD:
        return [Part(coding, b"", tlvs={Tag.MESSAGE_PAYLOAD: octets})]
    per_part = capacity - (7 if coding is DataCoding.DEFAULT else UDH_CONCAT_LENGTH)
    chunks = _chunks(octets, per_part, coding)
    if len(chunks) > 255:
        raise ValueError(f"message {sms.message_id} needs {len(chunks)} parts; at most 255")
    return [
        Part(
            coding,
            bytes((5, 0, 3, reference & 0xFF, len(chunks), index)) + chunk,
            esm_class=ESM_UDHI,
        )
        for index, chunk in enumerate(chunks, start=1)
    ]


def _chunks(octets: bytes, size: int, coding: DataCoding) -> list[bytes]:
    chunks: list[bytes] = []
    start = 0
    while start < len(octets):
        end = min(start + size, len(octets))
        if coding is DataCoding.UCS2:
            end -= (end - start) % 2
            # never cut a surrogate pair
            if end < len(octets) and 0xD8 <= octets[end - 2] <= 0xDB:
                end -= 2
        elif coding is DataCoding.DEFAULT and end < len(octets) and octets[end - 1] == gsm7.ESCAPE:
            end -= 1  # never cut an escape from its extension character
        chunks.append(octets[start:end])
        start = end
    return chunks


@dataclass(frozen=True, slots=True)
class Content:
    text: str | None
    data: bytes | None
    concat: tuple[int, int, int] | None = None  # reference, total, sequence


def decode_content(data_coding: int, esm_class: int, short_message: bytes) -> Content:
    """Text or data of a deliver_sm body; raises SmppError for a malformed UDH or UCS-2."""
    concat = None
    if esm_class & ESM_UDHI:
        if not short_message:
            raise SmppError("short_message at offset 0: UDHI set but no header")
        header_length = short_message[0]
        if 1 + header_length > len(short_message):
            raise SmppError(f"short_message UDH: length {header_length} overruns the message")
        concat = _concat(short_message[1 : 1 + header_length])
        short_message = short_message[1 + header_length :]
    coding = data_coding & 0x0F if data_coding & 0xF0 == 0xF0 else data_coding
    if coding == DataCoding.UCS2:
        try:
            return Content(short_message.decode("utf-16-be"), None, concat)
        except UnicodeDecodeError as error:
            raise SmppError(f"short_message at offset {error.start}: not UCS-2") from None
    if coding in (DataCoding.DEFAULT, 0x01):
        if any(octet > 0x7F for octet in short_message):
            raise SmppError("short_message: a GSM-7 septet above 0x7F")
        try:
            return Content(gsm7.decode(list(short_message)), None, concat)
        except (PduError, IndexError) as error:
            raise SmppError(f"short_message: {error}") from None
    if coding == 0x03:  # Latin-1
        return Content(short_message.decode("latin-1"), None, concat)
    return Content(None, bytes(short_message), concat)


def _concat(header: bytes) -> tuple[int, int, int] | None:
    position = 0
    while position + 2 <= len(header):
        iei, size = header[position], header[position + 1]
        value = header[position + 2 : position + 2 + size]
        if iei == 0x00 and size == 3 and len(value) == 3:
            return value[0], value[1], value[2]
        if iei == 0x08 and size == 4 and len(value) == 4:
            (reference,) = struct.unpack(">H", value[:2])
            return reference, value[2], value[3]
        position += 2 + size
    return None


class ReceiptState(StrEnum):
    DELIVERED = "DELIVRD"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    UNDELIVERABLE = "UNDELIV"
    ACCEPTED = "ACCEPTD"
    UNKNOWN = "UNKNOWN"
    REJECTED = "REJECTD"
    ENROUTE = "ENROUTE"


#: The receipt's stat: as a GSM 03.40 TP-Status, which is what DeliveryReport carries.
TP_STATUS: dict[ReceiptState, int] = {
    ReceiptState.DELIVERED: 0x00,
    ReceiptState.ACCEPTED: 0x01,  # forwarded, delivery not confirmed
    ReceiptState.ENROUTE: 0x20,  # still trying
    ReceiptState.UNDELIVERABLE: 0x41,
    ReceiptState.REJECTED: 0x43,
    ReceiptState.EXPIRED: 0x46,
    ReceiptState.DELETED: 0x47,
    ReceiptState.UNKNOWN: 0x60,
}

#: message_state TLV values (SMPP 3.4 §5.2.28) → receipt state.
MESSAGE_STATE: dict[int, ReceiptState] = {
    1: ReceiptState.ENROUTE,
    2: ReceiptState.DELIVERED,
    3: ReceiptState.EXPIRED,
    4: ReceiptState.DELETED,
    5: ReceiptState.UNDELIVERABLE,
    6: ReceiptState.ACCEPTED,
    7: ReceiptState.UNKNOWN,
    8: ReceiptState.REJECTED,
}
STATE_OF_RECEIPT = {state: code for code, state in MESSAGE_STATE.items()}

_RECEIPT = re.compile(
    r"id:(?P<id>\S+).*?(?:done date:(?P<done>\d{10,12}))?\s*stat:(?P<stat>[A-Z]+)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Receipt:
    message_id: str  # the SMSC's id, from submit_sm_resp
    state: ReceiptState
    done: datetime | None

    @property
    def tp_status(self) -> int:
        return TP_STATUS[self.state]


def parse_receipt(text: str, tlvs: dict[int, bytes]) -> Receipt:
    """A delivery receipt from its TLVs (preferred) or the de-facto `id:... stat:...` text."""
    match = _RECEIPT.search(text)
    message_id = match.group("id") if match else None
    raw_id = tlvs.get(Tag.RECEIPTED_MESSAGE_ID)
    if raw_id is not None:
        message_id = raw_id.rstrip(b"\x00").decode("ascii", errors="replace")
    state: ReceiptState | None = None
    if (raw_state := tlvs.get(Tag.MESSAGE_STATE)) is not None and len(raw_state) == 1:
        state = MESSAGE_STATE.get(raw_state[0])
    if state is None and match:
        try:
            state = ReceiptState(match.group("stat").upper())
        except ValueError:
            state = ReceiptState.UNKNOWN
    if not message_id or state is None:
        raise SmppError(f"delivery receipt without id or stat: {text[:80]!r}")
    done = None
    if match and match.group("done"):
        digits = match.group("done")
        try:
            done = datetime.strptime(digits[:10], "%y%m%d%H%M").replace(tzinfo=UTC)
        except ValueError:
            done = None
    return Receipt(message_id, state, done)


def receipt_text(message_id: str, state: ReceiptState, submitted: datetime, done: datetime) -> str:
    delivered = 1 if state is ReceiptState.DELIVERED else 0
    return (
        f"id:{message_id} sub:001 dlvrd:{delivered:03d} "
        f"submit date:{submitted:%y%m%d%H%M} done date:{done:%y%m%d%H%M} "
        f"stat:{state.value} err:000 text:"
    )
