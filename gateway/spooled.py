"""A gateway node: a carrier (the modem pool, an SMPP link, a simulated network) behind the
durable spool, offered to the hub as a `Transport`.

- `send` writes the SMS to the spool before it returns True, then hands it to the carrier;
  after a restart, every SMS not yet final is handed over again.
- Every event from the carrier is written to the spool before anyone sees it, and stays
  until the hub calls `ack`; `events()` first replays what is unacknowledged.
- Status reports carry only a modem's 0–255 reference: the spool matches them to the
  message, so the hub always gets a `message_id` when one exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from gateway.spool import OutboundState, Spool
from gateway.transport import (
    DeliveryReport,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)

log = logging.getLogger(__name__)

#: How far back a status report is matched to a sent part (references wrap at 256).
REPORT_WINDOW = timedelta(hours=72)


class Carrier(Protocol):
    """What moves SMS for a gateway: sends what it is given, reports what happens."""

    async def submit(self, sms: OutboundSms) -> None:
        """Takes the SMS for sending; its outcome comes later as a SendResult event."""
        ...

    def carrier_events(self) -> AsyncIterator[TransportEvent]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class SpooledGateway:
    def __init__(
        self,
        name: str,
        carrier: Carrier,
        spool: Spool,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.name = name
        self._carrier = carrier
        self._spool = spool
        self._clock = clock
        self._live: asyncio.Queue[tuple[int, TransportEvent]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        for pending in await self._spool.pending():
            await self._handover(pending.sms)
        self._tasks.append(asyncio.create_task(self._pump(), name=f"{self.name}-pump"))
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- Transport ------------------------------------------------------------------------

    async def send(self, sms: OutboundSms) -> bool:
        if await self._spool.accept(sms, self._clock()):
            await self._handover(sms)
        return True

    async def events(self) -> AsyncIterator[TransportEvent]:
        last_seq = 0
        for seq, event in await self._spool.unacknowledged():
            last_seq = seq
            yield event
        while True:
            seq, event = await self._live.get()
            if seq > last_seq:  # already replayed from the spool otherwise
                last_seq = seq
                yield event

    async def ack(self, event_id: str) -> None:
        await self._spool.ack(event_id)

    async def unacknowledged_events(self) -> list[TransportEvent]:
        return [event for _, event in await self._spool.unacknowledged()]

    # -- inside ---------------------------------------------------------------------------

    async def _handover(self, sms: OutboundSms) -> None:
        await self._spool.mark(sms.message_id, OutboundState.SENDING, self._clock())
        await self._carrier.submit(sms)

    async def _pump(self) -> None:
        async for event in self._carrier.carrier_events():
            try:
                await self._store(event)
            except Exception:
                # A spool that cannot write must stop the gateway, not drop the event.
                log.exception("%s: could not spool %s; stopping", self.name, event.event_id)
                raise

    async def _store(self, event: TransportEvent) -> None:
        now = self._clock()
        if not event.gateway:
            event = replace(event, gateway=self.name)
        if isinstance(event, SendResult):
            sent = event.status is SendStatus.SENT
            seq = await self._spool.record_outcome(
                event,
                event.message_id,
                OutboundState.SENT if sent else OutboundState.FAILED,
                now,
                error=event.error,
                modem=event.modem,
                references=event.message_references if sent else (),
                recipient=event.recipient,
            )
        else:
            if isinstance(event, DeliveryReport) and event.message_id is None:
                matched = await self._spool.match_report(
                    event.modem, event.message_reference, event.recipient, now, REPORT_WINDOW
                )
                event = replace(event, message_id=matched)
            seq = await self._spool.record_event(event, now)
        if seq is not None:
            self._live.put_nowait((seq, event))
