"""The one transport API between the hub and every SMS carrier.

A carrier (the AT modem pool, an SMPP link, the in-process simulated network, or the MQTT
bus in front of any of them) accepts outbound SMS with `send` and yields events with
`events`; the consumer calls `ack` once it has stored an event durably, and only then may
the carrier forget it. Until then an event is re-delivered (after a restart, or once
unacked for the carrier's re-delivery interval), so consumers deduplicate by `event_id`.

Every outbound SMS carries the hub's `message_id` (its idempotency key): a carrier given the
same `message_id` twice sends it once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class OutboundSms:
    message_id: str
    to: str  # normalised MSISDN (+62...)
    text: str | None = None
    data: bytes | None = None  # 8-bit data SMS (meter frames)
    status_report: bool = True

    def __post_init__(self) -> None:
        if (self.text is None) == (self.data is None):
            raise ValueError("an SMS carries either text or data, not both and not neither")


@dataclass(frozen=True, slots=True)
class InboundSms:
    event_id: str  # stable across re-deliveries
    sender: str
    received_at: datetime  # UTC, when the gateway stored it
    text: str | None = None
    data: bytes | None = None
    smsc_timestamp: datetime | None = None  # the network's time stamp (sender's clock zone)
    gateway: str = ""
    modem: str = ""
    complete: bool = True  # False: a multipart message whose missing parts timed out
    raw_pdus: tuple[str, ...] = ()


class SendStatus(StrEnum):
    SENT = "sent"  # the network accepted it (has message references)
    FAILED = "failed"  # given up: retries exhausted or a permanent error


@dataclass(frozen=True, slots=True)
class SendResult:
    event_id: str
    message_id: str
    status: SendStatus
    at: datetime
    message_references: tuple[int, ...] = ()
    recipient: str = ""
    gateway: str = ""
    modem: str = ""
    attempts: int = 1
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    event_id: str
    message_id: str | None  # None when no sent message matched the reference
    recipient: str
    message_reference: int
    status: int  # TP-Status: 0x00–0x1F delivered, 0x20–0x3F still trying, 0x40+ failed
    discharge_time: datetime | None
    at: datetime
    gateway: str = ""
    modem: str = ""

    @property
    def delivered(self) -> bool:
        return self.status < 0x20

    @property
    def final(self) -> bool:
        return self.status < 0x20 or self.status >= 0x40


class ModemStatus(StrEnum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    HUNG = "hung"
    RESETTING = "resetting"
    OUT_OF_SERVICE = "out-of-service"
    SIM_FULL = "sim-full"


@dataclass(frozen=True, slots=True)
class ModemStateChanged:
    event_id: str
    modem: str
    status: ModemStatus
    at: datetime
    detail: str = ""
    gateway: str = ""
    # Optional, so that documents from older gateways still decode (None: not reported).
    # A signal change alone comes as an event with the same status (detail "signal").
    signal_rssi: int | None = None  # AT+CSQ <rssi>: 0-31 (99, unknown, is sent as None)
    signal_percent: int | None = None  # rssi 0-31 as 0-100 %
    operator: str | None = None
    imei: str | None = None


#: ModemStateChanged.detail of an event that only brings a new signal reading.
SIGNAL_DETAIL = "signal"

TransportEvent = InboundSms | SendResult | DeliveryReport | ModemStateChanged


class Transport(Protocol):
    async def send(self, sms: OutboundSms) -> bool:
        """True once the carrier holds the SMS durably (a duplicate message_id is also True)."""
        ...

    def events(self) -> AsyncIterator[TransportEvent]:
        """Every event not yet acknowledged, then new ones as they happen."""
        ...

    async def ack(self, event_id: str) -> None:
        """The consumer has stored the event; the carrier may forget it."""
        ...


@runtime_checkable
class Routing(Protocol):
    """A transport over several gateways (the MQTT bus). A message offered again must go to
    the gateway that had it before: only that gateway can tell it is a duplicate, another
    would send it twice. The hub writes the choice down before it sends (outbox
    gateway_hint), so that any worker, after any restart, offers it to the same one."""

    def route_for(self, message_id: str) -> str | None:
        """The gateway the message goes to: the one it is pinned to, else the one a new
        message would go to now (None: no gateway is online)."""
        ...

    def pin(self, message_id: str, gateway: str) -> None:
        """`send` of this message goes to `gateway`, and is refused while that gateway is
        offline (up to the transport's fail-over limit)."""
        ...
