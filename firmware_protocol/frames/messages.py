"""The messages a frame carries: one frozen dataclass per message type, and their enums.

Units are in the field names (`_kwh`, `_w`, `_v`, `_min`); the wire layout of each message
is in `catalogue.CATALOGUE`, the one table that drives encoding and decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, IntFlag


class TokenOutcome(IntEnum):
    """What the meter did with a delivered token (the STS meter-side rules)."""

    ACCEPTED = 0
    USED = 1  # this TID was already accepted
    OLD = 2  # TID older than the oldest the meter remembers
    INVALID_CRC = 3  # wrong key, or a corrupted token
    KEY_EXPIRED = 4  # issued under a key revision / base date the meter no longer holds
    OVERFLOW = 5  # the credit register would exceed its maximum


class AlarmKind(IntEnum):
    LOW_CREDIT = 1
    NO_CREDIT = 2  # credit exhausted, supply cut
    TAMPER = 3
    COVER_OPEN = 4
    MAGNETIC = 5  # magnetic field interference
    OVER_POWER = 6  # load above the contracted limit, supply cut
    POWER_FAIL = 7  # sent on the meter's reserve power as mains is lost
    POWER_RESTORE = 8


class MeterStatus(IntFlag):
    """The meter's condition at the time of a reading or an alarm."""

    RELAY_OPEN = 0x0001  # supply disconnected
    LOW_CREDIT = 0x0002
    NO_CREDIT = 0x0004
    TAMPER = 0x0008
    COVER_OPEN = 0x0010
    MAGNETIC = 0x0020
    OVER_POWER = 0x0040
    CLOCK_UNSET = 0x0080
    BATTERY_LOW = 0x0100


class ReadKind(IntEnum):
    INSTANT = 1  # answered by TELEMETRY
    LOAD_PROFILE = 2  # answered by LOAD_PROFILE


class ConfigStatus(IntEnum):
    APPLIED = 0
    REJECTED = 1  # the meter kept its previous settings (the ack reports them)


# hub → meter ("down")


@dataclass(frozen=True, slots=True)
class TokenDelivery:
    reference: int  # the hub's transaction reference, echoed in TOKEN_RESULT
    token: str  # 20 digits


@dataclass(frozen=True, slots=True)
class BalanceQuery:
    pass


@dataclass(frozen=True, slots=True)
class ReadRequest:
    kind: ReadKind
    since: datetime  # LOAD_PROFILE: first interval wanted; INSTANT: ignored (send the epoch)


@dataclass(frozen=True, slots=True)
class SetConfig:
    reporting_interval_min: int
    low_credit_threshold_kwh: Decimal
    clock: datetime  # the hub's clock when it built the frame; the meter sets its clock to it


@dataclass(frozen=True, slots=True)
class Ping:
    pass


# meter → hub ("up")


@dataclass(frozen=True, slots=True)
class TokenResult:
    reference: int
    outcome: TokenOutcome
    at: datetime  # meter clock
    credit_kwh: Decimal  # remaining credit after this token
    added_kwh: Decimal  # zero unless accepted


@dataclass(frozen=True, slots=True)
class Telemetry:
    request_id: int  # message id of the READ_REQUEST answered; 0 for a scheduled reading
    read_at: datetime
    energy_kwh: Decimal  # cumulative register
    credit_kwh: Decimal
    voltage_v: Decimal
    power_w: int
    status: MeterStatus
    signal_csq: int  # AT+CSQ <rssi>: 0–31, 99 = not known


@dataclass(frozen=True, slots=True)
class Alarm:
    occurred_at: datetime
    kind: AlarmKind
    credit_kwh: Decimal
    status: MeterStatus


@dataclass(frozen=True, slots=True)
class BalanceReply:
    request_id: int
    read_at: datetime
    credit_kwh: Decimal
    energy_kwh: Decimal


@dataclass(frozen=True, slots=True)
class ConfigAck:
    request_id: int
    status: ConfigStatus
    reporting_interval_min: int  # the settings now in force
    low_credit_threshold_kwh: Decimal
    clock: datetime  # meter clock after applying


@dataclass(frozen=True, slots=True)
class Pong:
    request_id: int
    meter_time: datetime
    signal_csq: int
    firmware: int  # firmware version, major × 256 + minor


@dataclass(frozen=True, slots=True)
class LoadProfile:
    request_id: int
    start: datetime  # end of the first interval
    interval_min: int
    energy_kwh: tuple[Decimal, ...]  # cumulative register at the end of each interval


Message = (
    TokenDelivery
    | BalanceQuery
    | ReadRequest
    | SetConfig
    | Ping
    | TokenResult
    | Telemetry
    | Alarm
    | BalanceReply
    | ConfigAck
    | Pong
    | LoadProfile
)
