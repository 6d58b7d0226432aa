"""The meter ⇄ hub SMS frame protocol, version 1 (docs/protocol.md). Pure: no I/O.

Every frame fits one SMS (140 octets binary, or 160 GSM-7 characters as `LP1:` + base64),
is encrypted and authenticated with AES-GCM-128 under the meter's key (12-byte tag, IV =
system title + invocation counter), and carries one message of the catalogue, or one
segment of a larger one.
"""

from firmware_protocol.frames.catalogue import (
    CATALOGUE,
    Field,
    MessageSpec,
    MessageType,
    decode_payload,
    encode_payload,
    spec_for,
    spec_for_type,
)
from firmware_protocol.frames.crypto import KEY_LENGTH, TAG_LENGTH, iv, system_title
from firmware_protocol.frames.describe import (
    describe,
    header_fields,
    json_value,
    message_fields,
    message_from_json,
)
from firmware_protocol.frames.direction import Direction
from firmware_protocol.frames.endpoint import Endpoint, EndpointState, Role
from firmware_protocol.frames.errors import FrameError, Reason
from firmware_protocol.frames.frame import (
    MAX_FRAME,
    Frame,
    authenticate,
    decode_frame,
    open_frame,
    peek,
    seal,
)
from firmware_protocol.frames.header import MAX_SEGMENTS, Header
from firmware_protocol.frames.messages import (
    Alarm,
    AlarmKind,
    BalanceQuery,
    BalanceReply,
    ConfigAck,
    ConfigStatus,
    LoadProfile,
    Message,
    MeterStatus,
    Ping,
    Pong,
    ReadKind,
    ReadRequest,
    SetConfig,
    Telemetry,
    TokenDelivery,
    TokenOutcome,
    TokenResult,
)
from firmware_protocol.frames.reassembly import Reassembler, Received
from firmware_protocol.frames.replay import ReplayWindow
from firmware_protocol.frames.text import (
    PREFIX,
    TEXT_MAX_FRAME,
    decode_any,
    from_text,
    to_binary,
    to_text,
)

__all__ = [
    "CATALOGUE",
    "KEY_LENGTH",
    "MAX_FRAME",
    "MAX_SEGMENTS",
    "PREFIX",
    "TAG_LENGTH",
    "TEXT_MAX_FRAME",
    "Alarm",
    "AlarmKind",
    "BalanceQuery",
    "BalanceReply",
    "ConfigAck",
    "ConfigStatus",
    "Direction",
    "Endpoint",
    "EndpointState",
    "Field",
    "Frame",
    "FrameError",
    "Header",
    "LoadProfile",
    "Message",
    "MessageSpec",
    "MessageType",
    "MeterStatus",
    "Ping",
    "Pong",
    "ReadKind",
    "ReadRequest",
    "Reason",
    "Reassembler",
    "Received",
    "ReplayWindow",
    "Role",
    "SetConfig",
    "Telemetry",
    "TokenDelivery",
    "TokenOutcome",
    "TokenResult",
    "authenticate",
    "decode_any",
    "decode_frame",
    "decode_payload",
    "describe",
    "encode_payload",
    "from_text",
    "header_fields",
    "iv",
    "json_value",
    "message_fields",
    "message_from_json",
    "open_frame",
    "peek",
    "seal",
    "spec_for",
    "spec_for_type",
    "system_title",
    "to_binary",
    "to_text",
]
