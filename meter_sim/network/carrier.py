"""`NetworkCarrier`: the simulated network as a gateway carrier (gateway.spooled.Carrier).

It attaches to the `SmsNetwork` under one address (an MSISDN, or the service's short code)
and turns what arrives there into transport events: messages into `InboundSms`, status
reports into `DeliveryReport` (matched to the message later by the spool, by modem and
reference, as for a real modem). Put it behind `SpooledGateway` + `Spool` to get a
`Transport`.

Message references (TP-MR, 0–255) must not start over when the gateway does: the spool
matches a status report to the newest part sent with its reference, so a late report for a
message sent before a restart would be pinned on the first message after it. A real modem
keeps its counter on the SIM; this carrier continues from `first_reference` (give it
`await spool.next_reference(modem)`), or from a random point when none is given.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator

from gateway.transport import (
    DeliveryReport,
    InboundSms,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)
from meter_sim.network.messages import NetworkSms, NetworkStatusReport
from meter_sim.network.smsc import SmsNetwork


class NetworkCarrier:
    def __init__(
        self,
        network: SmsNetwork,
        address: str,
        *,
        modem: str = "sim0",
        first_reference: int | None = None,
    ) -> None:
        self.network = network
        self.address = address
        self.modem = modem
        self._events: asyncio.Queue[TransportEvent] = asyncio.Queue()
        start = secrets.randbelow(256) if first_reference is None else first_reference % 256
        self._references = itertools.count(start)
        self._report_ids = itertools.count(1)
        # Network message ids restart with the network: keep event ids of two runs apart.
        self._run = secrets.token_hex(4)
        network.attach(address, self)

    # -- Carrier ---------------------------------------------------------------------------

    async def submit(self, sms: OutboundSms) -> None:
        reference = next(self._references) % 256  # TP-MR wraps like a modem's
        self.network.submit(
            self.address,
            sms.to,
            text=sms.text,
            data=sms.data,
            report_reference=reference if sms.status_report else None,
        )
        self._events.put_nowait(
            SendResult(
                event_id=f"{self.address}:sent:{sms.message_id}",
                message_id=sms.message_id,
                status=SendStatus.SENT,
                at=self.network.now(),
                message_references=(reference,),
                recipient=sms.to,
                modem=self.modem,
            )
        )

    async def carrier_events(self) -> AsyncIterator[TransportEvent]:
        while True:
            yield await self._events.get()

    # -- network Endpoint --------------------------------------------------------------------

    async def receive_sms(self, sms: NetworkSms) -> bool:
        # The network's message id is stable for a duplicated copy: one event id for both.
        self._events.put_nowait(
            InboundSms(
                event_id=f"{self.address}:in:{self._run}:{sms.message_id}",
                sender=sms.sender,
                received_at=self.network.now(),
                text=sms.text,
                data=sms.data,
                smsc_timestamp=sms.submitted_at,
                modem=self.modem,
            )
        )
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        self._events.put_nowait(
            DeliveryReport(
                event_id=f"{self.address}:report:{self._run}:{next(self._report_ids)}",
                message_id=None,
                recipient=report.recipient,
                message_reference=report.message_reference,
                status=report.status,
                discharge_time=report.discharged_at,
                at=self.network.now(),
                modem=self.modem,
            )
        )
