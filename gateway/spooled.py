"""A gateway node: a carrier (the modem pool, an SMPP link, a simulated network) behind the
durable spool, offered to the hub as a `Transport`.

- `send` writes the SMS to the spool before it returns True, then hands it to the carrier;
  after a restart, every SMS not yet final is handed over again.
- Every event from the carrier is written to the spool before anyone sees it, and stays
  until the hub calls `ack`; `events()` first replays what is unacknowledged, and on a
  stream that stays open yields an event again once it has gone unacknowledged for
  `redeliver_after` seconds since it was last yielded (the consumer's store failed, or an
  MQTT bridge published it to no one). This is the only re-delivery a gateway does: the MQTT
  bridge just forwards this stream.
- Status reports carry only a modem's 0–255 reference: the spool matches them to the
  message, so the hub always gets a `message_id` when one exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
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

#: Seconds an event yielded but not acknowledged waits before it is yielded again.
REDELIVER_AFTER = 30.0

#: The loop may fire a timer up to its clock resolution early; an event due within this
#: much counts as due, or the stream would wake again at once for it.
_TIMER_SLACK = 0.01


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
        redeliver_after: float = REDELIVER_AFTER,
    ) -> None:
        if redeliver_after <= 0:
            raise ValueError("redeliver_after must be positive")
        self.name = name
        self.redeliver_after = redeliver_after
        self._carrier = carrier
        self._spool = spool
        self._clock = clock
        self._live: asyncio.Queue[tuple[int, TransportEvent]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        # event id → loop time it was last yielded, oldest first (re-yielding moves it to
        # the end), so the next redelivery is due at the first entry: no scan per event.
        self._yielded: OrderedDict[str, float] = OrderedDict()

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
        loop = asyncio.get_running_loop()
        last_seq = 0  # the newest event this stream has taken from the spool or the queue
        for seq, event in await self._spool.unacknowledged():
            last_seq = seq
            self._mark_yielded(event.event_id, loop.time())
            yield event
        while True:
            try:
                # Sleeps until a new event or the next redelivery is due; never spins.
                async with asyncio.timeout_at(self._next_redelivery()):
                    seq, event = await self._live.get()
            except TimeoutError:
                due = await self._due(last_seq, loop.time())
            else:
                due = []
                if seq > last_seq:  # already replayed from the spool otherwise
                    last_seq = seq
                    due.append(event)
            for event in due:
                self._mark_yielded(event.event_id, loop.time())
                yield event

    def _mark_yielded(self, event_id: str, now: float) -> None:
        self._yielded[event_id] = now
        self._yielded.move_to_end(event_id)

    def _next_redelivery(self) -> float | None:
        """Loop time the oldest yielded, unacked event is due again; None: nothing is."""
        for yielded_at in self._yielded.values():
            return yielded_at + self.redeliver_after
        return None

    async def _due(self, last_seq: int, now: float) -> list[TransportEvent]:
        """Unacked events to yield again: those last yielded `redeliver_after` ago, and any
        this stream has passed whose yield time is unknown (safer twice than never)."""
        unacked = await self._spool.unacknowledged()
        still = {event.event_id for _, event in unacked}
        # Entries for events acked behind our back (or by a stream since gone) would keep
        # the timer due forever: drop them so every remaining entry is re-yielded or later.
        for event_id in [e for e in self._yielded if e not in still]:
            del self._yielded[event_id]
        cutoff = now - self.redeliver_after + _TIMER_SLACK
        due = []
        for seq, event in unacked:
            yielded_at = self._yielded.get(event.event_id)
            if yielded_at is None:
                if seq <= last_seq:
                    due.append(event)
            elif yielded_at <= cutoff:
                due.append(event)
        return due

    async def ack(self, event_id: str) -> None:
        await self.ack_many([event_id])

    async def ack_many(self, event_ids: Sequence[str]) -> None:
        await self._spool.ack_many(event_ids)
        for event_id in event_ids:
            self._yielded.pop(event_id, None)

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
