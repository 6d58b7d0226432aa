"""`Hub`: the Operator Data's workflows as one async context manager.

    async with Hub(settings, store, registry, transport, p2apst, clock=clock) as hub:
        ...  # runs until the block ends

Inside, three workers run: the inbound consumer (transport events in batches, one
database transaction per batch, acknowledged only after commit), the outbox dispatcher,
and the sweep (durable timers: token resends and escalation, interrupted purchases,
reports). `sweep()`, `dispatch()` and `process_events()` are public so a caller can drive
them directly (tests with a fake clock, benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy.exc import OperationalError

from firmware_protocol.frames import TokenResult
from gateway.transport import InboundSms, Transport, TransportEvent
from operator_data.hub.context import HubContext, log
from operator_data.hub.customer import answer_commands
from operator_data.hub.delivery import resend_token, sweep_deliveries
from operator_data.hub.dispatcher import dispatch_once
from operator_data.hub.inbound import (
    CustomerCommand,
    act_on_frame,
    apply_event,
    is_customer_command,
    log_customer_commands,
)
from operator_data.hub.journal import PurchaseClaims
from operator_data.hub.link_watch import LinkWatch
from operator_data.hub.meter_batch import log_meter_frames
from operator_data.hub.meter_link import Checked, StaleReplayState, check_frame
from operator_data.hub.purchases import PurchaseDriver
from operator_data.hub.push import PushedToken, PushOutcome, push_token
from operator_data.hub.sla import Listener, SlaMonitor
from operator_data.hub.status import ModemBoard
from operator_data.hub.status_batch import apply_status, status_events
from operator_data.hub.stuck import flag_stuck
from operator_data.hub.token_batch import MeterAnswer, apply_token_results
from operator_data.registry import Identified, Registry, SenderMeter
from operator_data.settings import Settings
from operator_data.store import Store, utcnow
from operator_data.store.locks import run_once
from operator_data.store.outbox import next_due
from p2apst_adapter.client import P2apstClient

_log = logging.getLogger("operator_data.hub")
COMMAND_ATTEMPTS = 5

#: How long stopping waits for database work in progress before cancelling it anyway.
STOP_GRACE_S = 10.0
#: After a failed dispatch, before the next try (a broken database is not hammered).
DISPATCH_RETRY_S = 1.0


class Hub:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        registry: Registry,
        transport: Transport,
        p2apst: P2apstClient | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        sla: SlaMonitor | None = None,
        claims: PurchaseClaims | None = None,
        worker_id: str = "hub",
        run_sweeper: bool = True,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.ctx = HubContext(
            settings=settings,
            store=store,
            registry=registry,
            master=registry.require_master_key(),
            clock=clock,
            # Shared with the report outbox, whose acknowledgements end an SLA stage too.
            sla=sla if sla is not None else SlaMonitor(settings.sla),
            p2apst=p2apst,
        )
        #: `claims`: which worker drives which purchase, when workers share a database.
        self.purchases = PurchaseDriver(self.ctx, claims)
        #: Gateways and modems as their events describe them (the helpdesk status page).
        self.status = ModemBoard(worker=worker_id, p2apst=p2apst, transport=transport)
        self.worker_id = worker_id
        #: This worker's P2APST link, down too long: a helpdesk incident (its own sweep).
        self.link_watch = LinkWatch(self.ctx, worker_id)
        self._run_sweeper = run_sweeper
        #: Customer SMS logged and waiting to be answered, in arrival order; answered in
        #: batches by one task at a time (`_drain_commands`).
        self._command_queue: list[CustomerCommand] = []
        self._drainer: asyncio.Task[None] | None = None
        self._room = asyncio.Condition()  # notified as the command queue shrinks
        self._workers: list[asyncio.Task[None]] = []

    # -- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._workers = [
            asyncio.create_task(self._consume(), name=f"{self.worker_id}-inbound"),
            asyncio.create_task(self._dispatch_loop(), name=f"{self.worker_id}-dispatch"),
        ]
        if self._run_sweeper:
            self._workers.append(
                asyncio.create_task(self._sweep_loop(), name=f"{self.worker_id}-sweep")
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Let database work in progress finish, then cancel at once (no await between the
        # check and the cancels, so nothing can start a transaction in between).
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                while self.ctx.busy:
                    await self.ctx.quiet.wait()
        except TimeoutError:
            _log.warning("hub stopping with %d unit(s) of work still running", self.ctx.busy)
        tasks = [*self._workers, *self.ctx.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers = []

    # -- public ----------------------------------------------------------------------------

    def on_sla_breach(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(SlaBreach)` for each breach; returns an unsubscribe function."""
        return self.ctx.sla.subscribe(listener)

    async def wait_until(self, check: Callable[[], Awaitable[bool]]) -> None:
        """Wait until `check()` is true, re-checking whenever the hub commits some work
        (bound it with `asyncio.timeout`)."""
        while True:
            async with self.ctx.changed:
                if await check():
                    return
                with contextlib.suppress(TimeoutError):
                    # The condition wakes on every commit; the short bound only covers
                    # changes made by others (another process, the registry).
                    async with asyncio.timeout(0.5):
                        await self.ctx.changed.wait()

    async def sweep(self) -> None:
        """One pass of the durable timers (uses the injected clock). With several workers
        on one database only one sweeps at a time (two would resend a token twice); each
        watches its own P2APST link."""
        await self.link_watch.check()
        async with run_once(self.ctx.store, "hub-sweep") as mine:
            if mine:
                await sweep_deliveries(self.ctx)
                await self.purchases.sweep()
                await flag_stuck(self.ctx)
        await self.dispatch()

    async def dispatch(self) -> int:
        """Hand every due outbox row to the transport; returns how many were claimed."""
        total = 0
        while True:
            claimed = await dispatch_once(
                self.ctx, self.transport, self.worker_id, limit=self.settings.hub.batch_size
            )
            total += claimed
            if claimed:
                await self.ctx.notify()
            if claimed < self.settings.hub.batch_size:
                return total  # the outbox had no more due rows: no empty claim after it

    async def push_token(self, pushed: PushedToken) -> PushOutcome:
        """A token P2APST pushed: deliver it (idempotent by its PLN reference)."""
        return await push_token(self.ctx, pushed)

    async def resend_token(self, transaction_id: str, actor: str, reason: str) -> str:
        """A supervisor's resend of a token the meter has not confirmed (audited)."""
        return await resend_token(self.ctx, transaction_id, actor, reason)

    async def process_events(self, events: Sequence[TransportEvent]) -> None:
        """Apply a batch of transport events and ack them (customer SMS: once answered)."""
        await self._settle(events, await self.prepare(events))

    async def prepare(self, events: Sequence[TransportEvent]) -> Prepared:
        """The part of a batch's work that needs no transaction: who sent each SMS, and
        for meters their frames authenticated and decoded (the replay window is checked
        later, in the transaction). The consumer prepares the next batch while the
        previous one is being written."""
        now = self.ctx.now()
        for event in events:
            self.status.seen(event, now)
        senders = {event.sender for event in events if isinstance(event, InboundSms)}
        whos = await self.ctx.registry.identify_senders(senders) if senders else {}
        checked: dict[str, Checked] = {}
        for n, event in enumerate(events, start=1):
            who = _who(event, whos)
            if who is None or not isinstance(who.sender, SenderMeter) or who.key is None:
                continue
            assert isinstance(event, InboundSms)
            payload: bytes | str = event.data if event.data is not None else (event.text or "")
            checked[event.event_id] = check_frame(who.key, payload)
            if n % 64 == 0:
                await asyncio.sleep(0)  # let the batch being written go on meanwhile
        return Prepared(whos, checked)

    async def _settle(self, events: Sequence[TransportEvent], prepared: Prepared) -> None:
        applied = await self._apply_split(events, prepared, first=True)
        waiting = {work.event_id for work in applied.commands} | applied.failed
        for event in events:
            if event.event_id not in waiting:
                await self.transport.ack(event.event_id)
        if applied.commands:
            await self._queue_commands(applied.commands)

    async def _apply_split(
        self, events: Sequence[TransportEvent], prepared: Prepared, *, first: bool
    ) -> Applied:
        """Apply `events` in one transaction; if that fails, each half on its own (and so on
        down to single events, retried alone): one bad event costs a few small batches,
        not a batch's worth of single-event transactions."""
        try:
            return Applied(await self._apply(events, prepared))
        except Exception as error:
            if first and not isinstance(error, StaleReplayState):
                _log.exception("batch of %d events failed; applying it in parts", len(events))
            if len(events) == 1:
                return await self._alone(events[0], prepared)
            half = len(events) // 2
            left = await self._apply_split(events[:half], prepared, first=False)
            right = await self._apply_split(events[half:], prepared, first=False)
            return Applied([*left.commands, *right.commands], left.failed | right.failed)

    async def _apply(
        self, events: Sequence[TransportEvent], prepared: Prepared
    ) -> list[CustomerCommand]:
        whos = prepared.whos
        commands: list[CustomerCommand] = []
        received = {e.event_id: e.received_at for e in events if isinstance(e, InboundSms)}
        async with self.ctx.unit() as (conn, unit):
            # Locks are taken meters first (the frames' replay windows), then messages (the
            # send outcomes), then transactions (theirs, then the meters' answers'): the
            # order every unit of work takes them in, so workers queue, not deadlock.
            frames = await log_meter_frames(
                self.ctx,
                conn,
                [
                    (event, who)
                    for event in events
                    if isinstance(event, InboundSms)
                    and (who := whos.get(event.sender)) is not None
                    and isinstance(who.sender, SenderMeter)
                ],
                prepared.checked,
            )
            statuses = status_events(events)
            await apply_status(self.ctx, conn, unit, statuses)
            settled = {event.event_id for event in statuses}
            answers = {
                event_id: MeterAnswer(
                    pending.message, pending.sender.meter_number, pending.frame.message,
                    received[event_id],
                )
                for event_id, pending in frames.to_act.items()
                if isinstance(pending.frame.message, TokenResult)
            }  # fmt: skip
            await apply_token_results(self.ctx, conn, unit, list(answers.values()))
            settled |= set(answers)
            customers = [
                (event, who)
                for event in events
                if isinstance(event, InboundSms)
                and is_customer_command(event, who := _who(event, whos))
            ]
            logged = await log_customer_commands(conn, customers, at=self.ctx.now())
            commands.extend(work for work in logged if work is not None)
            settled |= {event.event_id for event, _ in customers}
            for event in events:
                if event.event_id in frames.done or event.event_id in settled:
                    continue
                pending = frames.to_act.get(event.event_id)
                if pending is not None:
                    assert isinstance(event, InboundSms)
                    await act_on_frame(
                        self.ctx, conn, unit, event, pending.message, pending.sender,
                        pending.frame,
                    )  # fmt: skip
                    continue
                work = await apply_event(self.ctx, conn, event, _who(event, whos))
                if work is not None:
                    commands.append(work)
        return commands

    # -- workers ---------------------------------------------------------------------------

    async def _alone(self, event: TransportEvent, prepared: Prepared) -> Applied:
        """One event in its own transaction — a batch of one, through the same set-wise
        passes; if it still fails it is left unacknowledged, so the transport delivers it
        again later (a transient fault passes; a persistent one is logged each time, and
        nothing is lost)."""
        for attempt in range(3):
            try:
                return Applied(await self._apply([event], prepared))
            except StaleReplayState:
                continue  # another worker moved the window: read it again
            except Exception:
                _log.exception("event %s failed (attempt %d)", event.event_id, attempt + 1)
        return Applied(failed={event.event_id})

    async def _queue_commands(self, works: Sequence[CustomerCommand]) -> None:
        """Queue customer SMS to be answered. Back-pressure: while the queue is at its
        bound, wait (the inbound consumer with it, so the transports' events wait in their
        spools, unacknowledged, instead of piling up here)."""
        limit = self.settings.hub.command_backlog
        async with self._room:
            await self._room.wait_for(
                lambda: len(self._command_queue) < limit or not self._draining()
            )
        self._command_queue.extend(works)
        if not self._draining():
            self._drainer = self.ctx.spawn(
                self._drain_commands(), name=f"{self.worker_id}-commands"
            )

    def _draining(self) -> bool:
        return self._drainer is not None and not self._drainer.done()

    async def _drain_commands(self) -> None:
        """Answer the queued SMS a batch at a time (what queued meanwhile is the next
        batch), acking each once it is answered."""
        while self._command_queue:
            batch = self._command_queue[: self.settings.hub.batch_size]
            del self._command_queue[: len(batch)]
            answered = await self._answer(batch)
            async with self._room:
                self._room.notify_all()
            for work in answered:
                await self.transport.ack(work.event_id)

    async def _answer(self, batch: list[CustomerCommand]) -> list[CustomerCommand]:
        """Answer a batch together; if that fails, each SMS alone. Returns those answered:
        one that still fails stays unacknowledged, so the transport delivers it again
        later (and its failure is logged each time)."""
        try:
            await self._answer_retrying(batch)
            return batch
        except Exception:
            if len(batch) == 1:
                _log.exception("command %s failed", batch[0].message.id)
                return []
            _log.exception("a batch of %d commands failed; answering them alone", len(batch))
        answered = []
        for work in batch:
            try:
                await self._answer_retrying([work])
                answered.append(work)
            except Exception:
                _log.exception("command %s failed", work.message.id)
        return answered

    async def _answer_retrying(self, batch: list[CustomerCommand]) -> None:
        async with self.ctx.guard():
            for attempt in range(COMMAND_ATTEMPTS):
                try:
                    await answer_commands(self.ctx, batch, self.purchases.start)
                    return
                except OperationalError:
                    # A busy database (SQLite's single writer under a burst): answering again
                    # is safe, an SMS answered already is found processed and left alone.
                    if attempt + 1 == COMMAND_ATTEMPTS:
                        raise
                    _log.warning("%d command(s): database busy, retrying", len(batch))
                    await asyncio.sleep(0.5 * 2**attempt)

    async def _consume(self) -> None:
        # Bounded: a transport re-delivers what it handed out long ago and saw no ack for,
        # so it must not hand out far more than the hub is about to work on.
        queue: asyncio.Queue[TransportEvent] = asyncio.Queue(2 * self.settings.hub.batch_size)

        async def pump() -> None:
            async for event in self.transport.events():
                await queue.put(event)

        async def settle(batch: list[TransportEvent], prepared: Prepared) -> None:
            try:
                await self._settle(batch, prepared)
            except Exception:
                log.exception("inbound batch failed; its events stay unacknowledged")

        pumping = asyncio.create_task(pump(), name=f"{self.worker_id}-events")
        settling: asyncio.Task[Any] | None = None
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < self.settings.hub.batch_size and not queue.empty():
                    batch.append(queue.get_nowait())
                try:
                    prepared = await self.prepare(batch)
                except Exception:
                    log.exception("inbound batch failed; its events stay unacknowledged")
                    continue
                # Batches are written one after another, in order; the next one is prepared
                # (CPU) while the previous one waits on the database.
                if settling is not None:
                    await settling
                settling = self.ctx.spawn(settle(batch, prepared), name=f"{self.worker_id}-batch")
        finally:
            pumping.cancel()
            if settling is not None:
                settling.cancel()
            await asyncio.gather(pumping, *([settling] if settling else []), return_exceptions=True)

    async def _dispatch_loop(self) -> None:
        while True:
            if self.ctx.wake_dispatcher.is_set():
                # Rows were queued (and committed) during the last round: they are due now,
                # so there is nothing to read before the next round. Under load every round
                # ends so, and the outbox's next-due read is spared once a round.
                wait = 0.0
            else:
                try:
                    wait = await self._until_due()
                except Exception:
                    log.exception("reading the outbox's next due row failed; retrying")
                    wait = self.settings.hub.sweep_interval_s
            if wait > 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                # cancellation that races the event, and the hub would then never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self.ctx.wake_dispatcher.wait()
            self.ctx.wake_dispatcher.clear()
            try:
                await self.dispatch()
            except Exception:
                log.exception("dispatch failed; retrying")
                await asyncio.sleep(DISPATCH_RETRY_S)

    async def _until_due(self) -> float:
        """Seconds until the outbox's next row is due (0: now), at most the sweep interval:
        rows another process queued wake no one here, so the outbox is looked at that often
        anyway. A read, so an idle dispatcher takes no write lock."""
        async with self.ctx.store.read() as conn:
            due = await next_due(conn)
        limit = self.settings.hub.sweep_interval_s
        if due is None:
            return limit
        return max(0.0, min(limit, (due - self.ctx.now()).total_seconds()))

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed; retrying")
            await asyncio.sleep(self.settings.hub.sweep_interval_s)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch's senders and pre-checked meter frames (see `Hub.prepare`)."""

    whos: dict[str, Identified]
    checked: dict[str, Checked]


@dataclass(slots=True)
class Applied:
    """What applying some events left: customer commands to act on, events that failed."""

    commands: list[CustomerCommand] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)


def _who(event: TransportEvent, whos: dict[str, Identified]) -> Identified | None:
    return whos.get(event.sender) if isinstance(event, InboundSms) else None
