"""What travels through the simulated SMS network."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.pdu import Concat, Encoding


@dataclass(frozen=True, slots=True)
class NetworkSms:
    """One short message (one part of a long one) on its way from `sender` to `recipient`."""

    message_id: int
    sender: str
    recipient: str
    text: str | None
    data: bytes | None
    concat: Concat | None
    submitted_at: datetime
    #: the alphabet the sender chose (TP-DCS), None for "whatever carries the text": a phone
    #: encodes every part of a long message alike, so a GSM-7-only part of a UCS-2 message
    #: still travels as UCS-2 (Kannel joins the parts' octets under the first part's coding)
    encoding: Encoding | None = None


@dataclass(frozen=True, slots=True)
class NetworkStatusReport:
    """Delivery outcome for the sender; `message_reference` is the TP-MR it was submitted with.
    `status` is TP-ST: 0 delivered, 0x40-0x7F permanent failure."""

    recipient: str
    message_reference: int
    status: int
    submitted_at: datetime
    discharged_at: datetime


class Endpoint(Protocol):
    """Anything with an MSISDN on the network: an emulated modem, a simulated meter or phone."""

    async def receive_sms(self, sms: NetworkSms) -> bool:
        """Take a message; False means "cannot store it now" (SIM full) and the SMSC retries."""
        ...

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        """Take a status report for a message this endpoint submitted with a report request."""
        ...
