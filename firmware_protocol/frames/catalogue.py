"""The message catalogue: one table of message types and their payload layouts.

Encoding and decoding walk a message's field list in order; nothing else knows a layout.
Type codes 0x01–0x7F are hub → meter, 0x81–0xFF meter → hub, so the code alone tells the
direction and a frame whose direction bit disagrees with its type is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from firmware_protocol.frames import messages as m
from firmware_protocol.frames.direction import Direction
from firmware_protocol.frames.errors import FrameError, Reason
from firmware_protocol.frames.fields import (
    Choice,
    Flags,
    Kind,
    ListOf,
    Scaled,
    StsToken,
    Time,
    UInt,
)


class MessageType(IntEnum):
    TOKEN_DELIVERY = 0x01
    BALANCE_QUERY = 0x02
    READ_REQUEST = 0x03
    SET_CONFIG = 0x04
    PING = 0x05
    TOKEN_RESULT = 0x81
    TELEMETRY = 0x82
    ALARM = 0x83
    BALANCE_REPLY = 0x84
    CONFIG_ACK = 0x85
    PONG = 0x86
    LOAD_PROFILE = 0x87

    @property
    def direction(self) -> Direction:
        return Direction.UP if self & 0x80 else Direction.DOWN


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind
    unit: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class MessageSpec:
    message_type: MessageType
    cls: type[m.Message]
    fields: tuple[Field, ...]
    summary: str

    @property
    def direction(self) -> Direction:
        return self.message_type.direction


U32 = UInt(4)
KWH = Scaled(4, 2)  # 0.01 kWh, up to 42 949 672.95 kWh
REQUEST_ID = Field("request_id", U32, "", "message id of the request answered; 0 if unsolicited")
SIGNAL = Field("signal_csq", UInt(1, ((0, 31), (99, 99))), "", "AT+CSQ rssi; 99 = not known")

CATALOGUE: Final[tuple[MessageSpec, ...]] = (
    MessageSpec(
        MessageType.TOKEN_DELIVERY,
        m.TokenDelivery,
        (
            Field("reference", U32, "", "hub transaction reference, echoed in TOKEN_RESULT"),
            Field("token", StsToken(), "", "the 20-digit STS token"),
        ),
        "deliver a purchased STS token",
    ),
    MessageSpec(MessageType.BALANCE_QUERY, m.BalanceQuery, (), "ask for BALANCE_REPLY"),
    MessageSpec(
        MessageType.READ_REQUEST,
        m.ReadRequest,
        (
            Field("kind", Choice(m.ReadKind), "", "INSTANT → TELEMETRY, LOAD_PROFILE"),
            Field("since", Time(), "", "first load-profile interval wanted"),
        ),
        "ask for a reading",
    ),
    MessageSpec(
        MessageType.SET_CONFIG,
        m.SetConfig,
        (
            Field("reporting_interval_min", UInt(2, ((15, 10080),)), "min", "15 min – 1 week"),
            Field("low_credit_threshold_kwh", KWH, "kWh", "LOW_CREDIT alarm below this"),
            Field("clock", Time(), "", "hub time; the meter sets its clock"),
        ),
        "change reporting and alarm settings, set the clock",
    ),
    MessageSpec(MessageType.PING, m.Ping, (), "ask for PONG"),
    MessageSpec(
        MessageType.TOKEN_RESULT,
        m.TokenResult,
        (
            Field("reference", U32, "", "from TOKEN_DELIVERY"),
            Field("outcome", Choice(m.TokenOutcome)),
            Field("at", Time(), "", "meter clock"),
            Field("credit_kwh", KWH, "kWh", "remaining credit after the token"),
            Field("added_kwh", KWH, "kWh", "0 unless ACCEPTED"),
        ),
        "what the meter did with a token",
    ),
    MessageSpec(
        MessageType.TELEMETRY,
        m.Telemetry,
        (
            REQUEST_ID,
            Field("read_at", Time(), "", "meter clock"),
            Field("energy_kwh", KWH, "kWh", "cumulative import register"),
            Field("credit_kwh", KWH, "kWh", "remaining credit"),
            Field("voltage_v", Scaled(2, 1), "V", "0–6553.5"),
            Field("power_w", U32, "W", "active power"),
            Field("status", Flags(2, m.MeterStatus)),
            SIGNAL,
        ),
        "a reading, scheduled or requested",
    ),
    MessageSpec(
        MessageType.ALARM,
        m.Alarm,
        (
            Field("occurred_at", Time(), "", "meter clock"),
            Field("kind", Choice(m.AlarmKind)),
            Field("credit_kwh", KWH, "kWh", "remaining credit"),
            Field("status", Flags(2, m.MeterStatus)),
        ),
        "an event the meter reports at once",
    ),
    MessageSpec(
        MessageType.BALANCE_REPLY,
        m.BalanceReply,
        (
            REQUEST_ID,
            Field("read_at", Time(), "", "meter clock"),
            Field("credit_kwh", KWH, "kWh", "remaining credit"),
            Field("energy_kwh", KWH, "kWh", "cumulative import register"),
        ),
        "answer to BALANCE_QUERY",
    ),
    MessageSpec(
        MessageType.CONFIG_ACK,
        m.ConfigAck,
        (
            REQUEST_ID,
            Field("status", Choice(m.ConfigStatus)),
            Field("reporting_interval_min", UInt(2, ((15, 10080),)), "min", "now in force"),
            Field("low_credit_threshold_kwh", KWH, "kWh", "now in force"),
            Field("clock", Time(), "", "meter clock after applying"),
        ),
        "answer to SET_CONFIG",
    ),
    MessageSpec(
        MessageType.PONG,
        m.Pong,
        (
            REQUEST_ID,
            Field("meter_time", Time(), "", "meter clock, to measure drift"),
            SIGNAL,
            Field("firmware", UInt(2), "", "major × 256 + minor"),
        ),
        "answer to PING",
    ),
    MessageSpec(
        MessageType.LOAD_PROFILE,
        m.LoadProfile,
        (
            REQUEST_ID,
            Field("start", Time(), "", "end of the first interval"),
            Field("interval_min", UInt(2, ((1, 1440),)), "min", "1 min – 1 day"),
            Field("energy_kwh", ListOf(KWH), "kWh", "cumulative register per interval"),
        ),
        "interval readings; usually several segments",
    ),
)

_BY_TYPE: Final = {spec.message_type: spec for spec in CATALOGUE}
_BY_CLASS: Final = {spec.cls: spec for spec in CATALOGUE}


def spec_for_code(code: int, offset: int | None = None) -> MessageSpec:
    try:
        return _BY_TYPE[MessageType(code)]
    except (ValueError, KeyError):
        raise FrameError(
            Reason.UNKNOWN_TYPE, f"no message type {code:#04x}", offset=offset
        ) from None


def spec_for_type(message_type: MessageType) -> MessageSpec:
    return _BY_TYPE[message_type]


def spec_for(message: m.Message) -> MessageSpec:
    try:
        return _BY_CLASS[type(message)]
    except KeyError:
        raise FrameError(
            Reason.UNKNOWN_TYPE, f"{type(message).__name__} is not a message type"
        ) from None


def encode_payload(message: m.Message) -> tuple[MessageType, bytes]:
    """The message's type code and its payload bytes (before encryption)."""
    spec = spec_for(message)
    out = bytearray()
    for field in spec.fields:
        out += field.kind.encode(getattr(message, field.name), field.name, len(out))
    return spec.message_type, bytes(out)


def decode_payload(message_type: MessageType, payload: bytes) -> m.Message:
    """The message in a decrypted payload; every byte must belong to a field."""
    spec = _BY_TYPE[message_type]
    values: dict[str, Any] = {}
    offset = 0
    for field in spec.fields:
        values[field.name], offset = field.kind.decode(payload, offset, field.name)
    if offset != len(payload):
        raise FrameError(
            Reason.BAD_LENGTH,
            f"{spec.message_type.name} payload has {len(payload) - offset} bytes too many",
            offset=offset,
        )
    return spec.cls(**values)
