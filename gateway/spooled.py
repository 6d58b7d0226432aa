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
- The spool group-commits (gateway/group_commit.py): sends, acks and carrier events that
  arrive while a commit is under way share the next one. A carrier that can hand over every
  event it has ready at once (`BatchingCarrier`) has them stored together, in one commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

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

    def carrier_events(self) -> AsyncIterator[TransportEvent]:
        """Its events, one at a time: the consumer asks for the next one only once it has
        stored this one durably (what lets a modem free the SIM slot, an SMSC get its
        deliver_sm answered)."""
        ...


@runtime_checkable
class BatchingCarrier(Carrier, Protocol):
    def carrier_event_batches(self) -> AsyncIterator[Sequence[TransportEvent]]:
        """Its events as they come, each time every one that is ready (at least one), in
        order: the consumer asks for the next batch only once it has stored every event of
        this one — one spool commit for all of them instead of one each."""
        ...


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
        pending = [item.sms for item in await self._spool.pending()]
        # Marked all at once (a few commits, not one each), then handed over in order.
        now = self._clock()
        await asyncio.gather(
            *(self._spool.mark(sms.message_id, OutboundState.SENDING, now) for sms in pending)
        )
        for sms in pending:
            await self._carrier.submit(sms)
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
        # Written straight as SENDING: one spool write (and commit) per SMS, not two.
        if await self._spool.accept(sms, self._clock(), sending=True):
            await self._carrier.submit(sms)
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

    async def spool_backlog(self) -> dict[str, int]:
        """Rows waiting in the spool by state (`Spool.backlog`), for the bus status."""
        return await self._spool.backlog()

    # -- inside ---------------------------------------------------------------------------

    async def _pump(self) -> None:
        carrier = self._carrier
        if isinstance(carrier, BatchingCarrier):
            async for batch in carrier.carrier_event_batches():
                await self._store(batch)
        else:
            async for event in carrier.carrier_events():
                await self._store([event])

    async def _store(self, events: Sequence[TransportEvent]) -> None:
        """Stores carrier events all at once (their writes share a transaction). A status
        report may follow its own send result in the same batch: it is matched against the
        send results not yet written first (the newest part sent, as the spool would
        answer once they are), else through the spool, whose answer they cannot change."""
        now = self._clock()
        stored: list[tuple[int, TransportEvent]] = []
        writing: list[TransportEvent] = []  # in order; written together at the end
        # (modem, recipient, reference) → message, of the SENT results in `writing`.
        unwritten: dict[tuple[str, str, int], str] = {}
        try:
            for event in events:
                if not event.gateway:
                    event = replace(event, gateway=self.name)
                if isinstance(event, DeliveryReport) and event.message_id is None:
                    key = (event.modem, event.recipient, event.message_reference)
                    matched = unwritten.get(key)
                    if matched is None:
                        matched = await self._spool.match_report(
                            event.modem,
                            event.message_reference,
                            event.recipient,
                            now,
                            REPORT_WINDOW,
                        )
                    event = replace(event, message_id=matched)
                elif isinstance(event, SendResult) and event.status is SendStatus.SENT:
                    for reference in event.message_references:  # the newest wins
                        unwritten[(event.modem, event.recipient, reference)] = event.message_id
                writing.append(event)
            await self._write_all(writing, now, stored)
        finally:
            # In sequence order (the order of their writes), whatever was stored: a stream
            # takes an event from the queue only if it is newer than the last it saw.
            for seq, event in sorted(stored, key=lambda item: item[0]):
                self._live.put_nowait((seq, event))

    async def _write_all(
        self,
        events: Sequence[TransportEvent],
        now: datetime,
        stored: list[tuple[int, TransportEvent]],
    ) -> None:
        """Writes `events` concurrently, adding each newly stored one to `stored`; once all
        are done, raises if one could not be written (a spool that cannot write must stop
        the gateway, not drop the event)."""
        outcomes: list[int | Exception | None]
        if len(events) == 1:  # the common case with a one-at-a-time carrier: no task
            outcomes = [await self._write(events[0], now)]
        else:
            outcomes = list(await asyncio.gather(*(self._write(e, now) for e in events)))
        failure: Exception | None = None
        for event, outcome in zip(events, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error(
                    "%s: could not spool %s; stopping", self.name, event.event_id, exc_info=outcome
                )
                failure = failure or outcome
            elif outcome is not None:
                stored.append((outcome, event))
        if failure is not None:
            raise failure

    async def _write(self, event: TransportEvent, now: datetime) -> int | Exception | None:
        """The event's sequence number (None: it was there already), or the error."""
        try:
            if isinstance(event, SendResult):
                sent = event.status is SendStatus.SENT
                return await self._spool.record_outcome(
                    event,
                    event.message_id,
                    OutboundState.SENT if sent else OutboundState.FAILED,
                    now,
                    error=event.error,
                    modem=event.modem,
                    references=event.message_references if sent else (),
                    recipient=event.recipient,
                )
            return await self._spool.record_event(event, now)
        except Exception as error:
            return error
