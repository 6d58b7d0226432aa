"""SMPP 3.4 PDUs: the commands a transceiver needs, as data, with one encoder and decoder.

A PDU is a 16-byte header (command_length, command_id, command_status, sequence_number, all
big-endian unsigned 32-bit) and a body of mandatory parameters in a fixed order, followed by
optional TLVs. The layout of each body lives in `BODIES`; `encode` and `decode` read it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum

HEADER = struct.Struct(">IIII")
MAX_PDU = 65536  # no PDU a transceiver handles comes near; larger means a broken peer


class SmppError(ValueError):
    """A PDU that cannot be decoded or encoded; says which field and byte offset."""


class UnknownCommand(SmppError):
    """A whole PDU (its length checked) whose command_id this codec does not know, e.g. an
    SMSC's alert_notification or outbind: the stream is still in
    step, so the link answers it (generic_nack, SMPP 3.4 §4.3) and goes on."""

    def __init__(self, command_id: int, status: int, sequence: int) -> None:
        super().__init__(f"command_id at offset 4: 0x{command_id:08x} is not supported")
        self.command_id = command_id
        self.status = status
        self.sequence = sequence

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103

    @property
    def is_response(self) -> bool:
        return bool(self & 0x80000000)


class Status(IntEnum):
    """The command_status values this code reacts to (SMPP 3.4 §5.1.3)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RMSGQFUL = 0x14
    ESME_RTHROTTLED = 0x58
    ESME_RX_T_APPN = 0x64  # "temporary application error": the SMSC asks us to redeliver


#: Statuses that mean "not now": back off and send the same PDU again.
RETRY_LATER = frozenset({Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL})


class Kind(Enum):
    CSTRING = "c-octet string"  # NUL-terminated ASCII; `size` counts the NUL
    INT1 = "1-octet integer"
    MESSAGE = "short_message"  # length from the preceding sm_length


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind
    size: int = 1


def _c(name: str, size: int) -> Param:
    return Param(name, Kind.CSTRING, size)


def _i(name: str) -> Param:
    return Param(name, Kind.INT1)


_BIND = (
    _c("system_id", 16),
    _c("password", 9),
    _c("system_type", 13),
    _i("interface_version"),
    _i("addr_ton"),
    _i("addr_npi"),
    _c("address_range", 41),
)
_SM = (
    _c("service_type", 6),
    _i("source_addr_ton"),
    _i("source_addr_npi"),
    _c("source_addr", 21),
    _i("dest_addr_ton"),
    _i("dest_addr_npi"),
    _c("destination_addr", 21),
    _i("esm_class"),
    _i("protocol_id"),
    _i("priority_flag"),
    _c("schedule_delivery_time", 17),
    _c("validity_period", 17),
    _i("registered_delivery"),
    _i("replace_if_present_flag"),
    _i("data_coding"),
    _i("sm_default_msg_id"),
    _i("sm_length"),
    Param("short_message", Kind.MESSAGE, 254),
)

#: Mandatory parameters of each command's body, in wire order.
BODIES: Mapping[Command, tuple[Param, ...]] = {
    Command.GENERIC_NACK: (),
    Command.BIND_RECEIVER: _BIND,
    Command.BIND_RECEIVER_RESP: (_c("system_id", 16),),
    Command.BIND_TRANSMITTER: _BIND,
    Command.BIND_TRANSMITTER_RESP: (_c("system_id", 16),),
    # SMPP 3.4 §4.8: the state of a message submitted earlier, by the SMSC's id.
    Command.QUERY_SM: (
        _c("message_id", 65),
        _i("source_addr_ton"),
        _i("source_addr_npi"),
        _c("source_addr", 21),
    ),
    Command.QUERY_SM_RESP: (
        _c("message_id", 65),
        _c("final_date", 17),
        _i("message_state"),
        _i("error_code"),
    ),
    Command.BIND_TRANSCEIVER: _BIND,
    Command.BIND_TRANSCEIVER_RESP: (_c("system_id", 16),),
    Command.SUBMIT_SM: _SM,
    Command.SUBMIT_SM_RESP: (_c("message_id", 65),),
    Command.DELIVER_SM: _SM,
    Command.DELIVER_SM_RESP: (_c("message_id", 65),),
    Command.UNBIND: (),
    Command.UNBIND_RESP: (),
    Command.ENQUIRE_LINK: (),
    Command.ENQUIRE_LINK_RESP: (),
    # SMPP 3.4 §4.7: a deliver_sm without short_message (user data in message_payload) and
    # with 65-octet addresses; SMSCs send MO messages and receipts this way.
    Command.DATA_SM: (
        _c("service_type", 6),
        _i("source_addr_ton"),
        _i("source_addr_npi"),
        _c("source_addr", 65),
        _i("dest_addr_ton"),
        _i("dest_addr_npi"),
        _c("destination_addr", 65),
        _i("esm_class"),
        _i("registered_delivery"),
        _i("data_coding"),
    ),
    Command.DATA_SM_RESP: (_c("message_id", 65),),
}

#: Commands that may have TLVs after the mandatory parameters.
_WITH_TLVS = frozenset(
    {
        Command.BIND_TRANSCEIVER_RESP,
        Command.BIND_TRANSMITTER_RESP,
        Command.BIND_RECEIVER_RESP,
        Command.SUBMIT_SM,
        Command.DELIVER_SM,
        Command.DATA_SM,
        Command.DATA_SM_RESP,
    }
)


class Tag(IntEnum):
    """Optional parameter tags used here (SMPP 3.4 §5.3.2)."""

    RECEIPTED_MESSAGE_ID = 0x001E
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427
    NETWORK_ERROR_CODE = 0x0423
    DELIVERY_FAILURE_REASON = 0x0425  # data_sm_resp: why the ESME did not take it
    SC_INTERFACE_VERSION = 0x0210


Value = int | str | bytes


@dataclass(frozen=True, slots=True)
class Pdu:
    command: Command
    sequence: int
    status: int = 0
    params: Mapping[str, Value] = field(default_factory=dict)
    tlvs: Mapping[int, bytes] = field(default_factory=dict)

    def text(self, name: str) -> str:
        value = self.params.get(name, "")
        return value if isinstance(value, str) else ""

    def number(self, name: str) -> int:
        value = self.params.get(name, 0)
        return value if isinstance(value, int) else 0

    def octets(self, name: str) -> bytes:
        value = self.params.get(name, b"")
        return value if isinstance(value, bytes) else b""


def encode(pdu: Pdu) -> bytes:
    body = bytearray()
    params = dict(pdu.params)
    if Kind.MESSAGE in (p.kind for p in BODIES[pdu.command]):
        params["sm_length"] = len(pdu.octets("short_message"))
    # A failed response carries no body (SMPP 3.4 §3.3: "body is not returned").
    omit_body = pdu.command.is_response and pdu.status != 0 and not pdu.params
    for param in () if omit_body else BODIES[pdu.command]:
        value = params.get(
            param.name, b"" if param.kind is Kind.MESSAGE else 0 if param.kind is Kind.INT1 else ""
        )
        body += _encode_param(param, value)
    if pdu.tlvs and pdu.command not in _WITH_TLVS:
        raise SmppError(f"{pdu.command.name} takes no optional parameters")
    for tag, value in pdu.tlvs.items():
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise SmppError(f"TLV 0x{tag:04x}: tag or length out of range")
        body += struct.pack(">HH", tag, len(value)) + value
    length = HEADER.size + len(body)
    if not 0 <= pdu.sequence <= 0xFFFFFFFF or not 0 <= pdu.status <= 0xFFFFFFFF:
        raise SmppError("sequence_number or command_status out of range")
    return HEADER.pack(length, pdu.command, pdu.status, pdu.sequence) + bytes(body)


def _encode_param(param: Param, value: Value) -> bytes:
    if param.kind is Kind.INT1:
        if not isinstance(value, int) or not 0 <= value <= 0xFF:
            raise SmppError(f"{param.name}: {value!r} is not a 1-octet integer")
        return bytes((value,))
    if param.kind is Kind.CSTRING:
        if not isinstance(value, str):
            raise SmppError(f"{param.name}: {value!r} is not a string")
        raw = value.encode("ascii", errors="strict") if value.isascii() else None
        if raw is None or b"\x00" in raw or len(raw) + 1 > param.size:
            raise SmppError(f"{param.name}: {value!r} is not ASCII of at most {param.size - 1}")
        return raw + b"\x00"
    if not isinstance(value, bytes) or len(value) > param.size:
        raise SmppError(f"{param.name}: must be at most {param.size} octets")
    return value


def frame_length(header: bytes) -> int:
    """The command_length of a PDU from its first four octets; refuses impossible values."""
    if len(header) < 4:
        raise SmppError("command_length: fewer than 4 octets at offset 0")
    length = int.from_bytes(header[:4], "big")
    if not HEADER.size <= length <= MAX_PDU:
        raise SmppError(f"command_length at offset 0: {length} is not {HEADER.size}-{MAX_PDU}")
    return length


def decode(frame: bytes) -> Pdu:
    """Decodes one whole PDU; raises SmppError naming the field and offset that failed."""
    length = frame_length(frame)
    if len(frame) != length:
        raise SmppError(f"command_length at offset 0: says {length}, frame has {len(frame)}")
    _, command_id, status, sequence = HEADER.unpack_from(frame)
    try:
        command = Command(command_id)
    except ValueError:
        raise UnknownCommand(command_id, status, sequence) from None
    offset = HEADER.size
    params: dict[str, Value] = {}
    # A response may come without a body: SMPP 3.4 §3.3 for a failure, and SMSCs for an
    # answer nobody waits on (a stray data_sm_resp); its parameters then read as absent.
    if not (command.is_response and offset == length):
        for param in BODIES[command]:
            value, offset = _decode_param(frame, offset, param, params)
            params[param.name] = value
    tlvs: dict[int, bytes] = {}
    while offset < length:
        if command not in _WITH_TLVS:
            raise SmppError(f"{command.name}: {length - offset} unexpected octets at {offset}")
        if offset + 4 > length:
            raise SmppError(f"TLV header at offset {offset}: truncated")
        tag, size = struct.unpack_from(">HH", frame, offset)
        if offset + 4 + size > length:
            raise SmppError(f"TLV 0x{tag:04x} at offset {offset}: length {size} overruns the PDU")
        tlvs[tag] = frame[offset + 4 : offset + 4 + size]
        offset += 4 + size
    return Pdu(command, sequence, status, params, tlvs)


def _decode_param(
    frame: bytes, offset: int, param: Param, params: Mapping[str, Value]
) -> tuple[Value, int]:
    if offset >= len(frame) and param.kind is not Kind.MESSAGE:
        raise SmppError(f"{param.name} at offset {offset}: missing (PDU ends)")
    if param.kind is Kind.INT1:
        return frame[offset], offset + 1
    if param.kind is Kind.CSTRING:
        end = frame.find(b"\x00", offset, offset + param.size)
        if end < 0:
            raise SmppError(f"{param.name} at offset {offset}: no NUL within {param.size} octets")
        raw = frame[offset:end]
        if not raw.isascii():
            raise SmppError(f"{param.name} at offset {offset}: not ASCII")
        return raw.decode("ascii"), end + 1
    size = params.get("sm_length", 0)
    assert isinstance(size, int)
    if offset + size > len(frame):
        raise SmppError(f"{param.name} at offset {offset}: sm_length {size} overruns the PDU")
    return frame[offset : offset + size], offset + size
