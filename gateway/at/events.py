"""What a modem reports to its owner: state changes, inbound messages, status reports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from gateway.at.errors import Reaction
from gateway.at.protocol import Urc
from gateway.at.responses import Signal, StorageStatus
from gateway.pdu import Deliver, StatusReport, Submit


class ModemState(Enum):
    STARTING = "starting"
    READY = "ready"
    HUNG = "hung"  # a command timed out; the owner resets the modem
    OUT_OF_SERVICE = "out-of-service"  # start-up failed (no SIM, PIN, no network, no answer)
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class InboundSms:
    """One PDU taken from the modem, handed to `persist` before it is deleted from storage.

    `decoded` is None when the PDU does not decode (`error` says why): it is still persisted,
    raw, so that nothing that arrived is lost.
    """

    modem: str
    pdu: str
    decoded: Deliver | StatusReport | Submit | None
    error: str | None
    received_at: datetime  # arrival at the gateway, UTC
    storage: str | None = None  # None for a direct +CMT/+CDS delivery
    index: int | None = None
    stat: int | None = None

    @property
    def fingerprint(self) -> str:
        """Idempotency key: the same PDU read twice (e.g. the delete failed) is one message."""
        return hashlib.sha256(self.pdu.upper().encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class ModemStateChanged:
    """`reaction` says why a modem left service (HUNG, NO_SIM, SECURITY → alert, ...)."""

    modem: str
    state: ModemState
    reason: str = ""
    reaction: Reaction | None = None
    # What the modem last said of itself (None: not read, refused or unreadable).
    signal: Signal | None = None
    operator: str | None = None
    imei: str | None = None


@dataclass(frozen=True, slots=True)
class InboundPersisted:
    """`persist` returned; `deleted` says whether the message also left the modem storage."""

    modem: str
    sms: InboundSms
    deleted: bool


@dataclass(frozen=True, slots=True)
class PersistFailed:
    """`persist` raised: the message stays in storage and the next sweep tries again."""

    modem: str
    sms: InboundSms
    error: str


@dataclass(frozen=True, slots=True)
class StatusReportReceived:
    modem: str
    message_reference: int
    report: StatusReport
    sms: InboundSms


@dataclass(frozen=True, slots=True)
class StorageChecked:
    modem: str
    status: StorageStatus


@dataclass(frozen=True, slots=True)
class StorageFull:
    """The modem storage is full (CMS 322, a full-memory URC, or used == total): draining."""

    modem: str
    reason: str


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """A URC the driver does not act on itself (RING, +CREG:, ^RSSI:, unknown lines)."""

    modem: str
    urc: Urc


ModemEvent = (
    ModemStateChanged
    | InboundPersisted
    | PersistFailed
    | StatusReportReceived
    | StorageChecked
    | StorageFull
    | Unsolicited
)
