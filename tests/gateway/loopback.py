"""An in-memory carrier for tests of the layers above a carrier."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from gateway.transport import OutboundSms, SendResult, SendStatus, TransportEvent

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


class LoopbackCarrier:
    """An in-memory carrier: reports every submitted SMS as sent, with a fresh reference,
    and lets the test inject what the network would deliver."""

    def __init__(self, *, report_sends: bool = True) -> None:
        self.submitted: list[OutboundSms] = []
        self.report_sends = report_sends
        self._events: asyncio.Queue[TransportEvent] = asyncio.Queue()
        self._refs = itertools.count(1)
        self._ids = itertools.count(1)

    async def submit(self, sms: OutboundSms) -> None:
        self.submitted.append(sms)
        if self.report_sends:
            ref = next(self._refs) % 256
            self.inject(
                SendResult(
                    f"sr-{sms.message_id}", sms.message_id, SendStatus.SENT, NOW, (ref,),
                    sms.to, modem="m1",
                )
            )  # fmt: skip

    def inject(self, event: TransportEvent) -> None:
        self._events.put_nowait(event)

    async def carrier_events(self) -> AsyncIterator[TransportEvent]:
        while True:
            yield await self._events.get()
