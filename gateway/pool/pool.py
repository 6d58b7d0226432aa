"""N modems behind one `send(sms) -> accepted` and one event stream.

Scheduling: every modem has its own sender task that takes the next message it may send
from one shared list as soon as the modem is READY and its rate limit allows, so a slow or
failing modem never holds up messages another modem could send (no head-of-line blocking).
A modem sends one SMS (all its parts, in order) at a time. A failed attempt goes back to the
list according to RETRY_POLICY, usually avoiding the modem it failed on for a while.

Health: every modem has a supervisor task: a HUNG modem is reset at once; a modem that is
OUT_OF_SERVICE (start-up failed: no SIM, PIN, no network, no answer) is re-probed with
doubling back-off.

Inbound: each modem hands every SMS it takes from storage to the owner's `persist` (and
deletes it only after that returns); the pool then reassembles multipart messages and emits
`gateway.transport` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

from gateway.at.config import ModemConfig
from gateway.at.errors import AtError, ModemError, Reaction, StartupError
from gateway.at.events import (
    InboundPersisted,
    ModemEvent,
    ModemState,
    ModemStateChanged,
    StatusReportReceived,
    StorageFull,
)
from gateway.at.modem import Modem, PersistCallback
from gateway.at.multipart import AssembledMessage, Reassembler
from gateway.pdu import Deliver, PduError, SubmitPart, encode_submit
from gateway.pool.policy import RETRY_POLICY, Delay, PoolConfig
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    ModemStatus,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)
from gateway.transport import ModemStateChanged as TransportModemState

log = logging.getLogger(__name__)

_STATUS: dict[ModemState, ModemStatus] = {
    ModemState.STARTING: ModemStatus.STARTING,
    ModemState.READY: ModemStatus.READY,
    ModemState.HUNG: ModemStatus.HUNG,
    ModemState.OUT_OF_SERVICE: ModemStatus.OUT_OF_SERVICE,
    ModemState.CLOSED: ModemStatus.OUT_OF_SERVICE,
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Job:
    sms: OutboundSms
    parts: tuple[SubmitPart, ...]
    references: list[int] = field(default_factory=list)  # of parts sent so far
    attempts: int = 0
    limited_attempts: int = 0
    not_before: float = 0.0
    avoid: str | None = None
    avoid_until: float = 0.0
    last_modem: str = ""

    def eligible(self, modem: str, now: float) -> bool:
        return self.not_before <= now and (modem != self.avoid or self.avoid_until <= now)

    def wake_at(self, modem: str) -> float:
        return max(self.not_before, self.avoid_until if modem == self.avoid else 0.0)


@dataclass(slots=True)
class _Slot:
    modem: Modem
    # One event per waiter, each cleared only by its own waiter before it looks at the state.
    sender_wake: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor_wake: asyncio.Event = field(default_factory=asyncio.Event)
    next_start: float = 0.0
    sending: str | None = None  # message_id in flight

    @property
    def name(self) -> str:
        return self.modem.name


class ModemPool:
    """`async with ModemPool(configs, persist=...) as pool:` then `send` and `events()`."""

    def __init__(
        self,
        modems: Sequence[ModemConfig],
        *,
        persist: PersistCallback,
        config: PoolConfig | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if len({m.label for m in modems}) != len(modems):
            raise ValueError("modem names (or ports) must be unique in a pool")
        self._modem_configs = list(modems)
        self._persist = persist
        self.config = config or PoolConfig()
        self._clock = clock
        self._sleep = sleep  # rate-limit and re-probe waits (injectable for tests)
        self._slots: list[_Slot] = []
        self._by_name: dict[str, _Slot] = {}
        self._jobs: list[_Job] = []
        self._known: set[str] = set()  # message_ids accepted (in-memory; the spool is durable)
        self._jobs_changed = asyncio.Condition()
        self._events: asyncio.Queue[TransportEvent] = asyncio.Queue()
        self._reassembler = Reassembler(self.config.reassembly_timeout)
        self._stack = AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    # -- lifetime -----------------------------------------------------------------------------

    async def __aenter__(self) -> ModemPool:
        await self._stack.__aenter__()
        try:
            for modem_config in self._modem_configs:
                modem = Modem(
                    modem_config,
                    persist=self._persist,
                    on_event=self._modem_event,
                    raise_on_startup_failure=False,
                )
                self._slots.append(_Slot(modem))
            self._by_name = {slot.name: slot for slot in self._slots}
            # Started together: one slow or dead modem does not delay the others.
            await asyncio.gather(*(self._stack.enter_async_context(s.modem) for s in self._slots))
        except BaseException:
            await self._stack.__aexit__(None, None, None)
            raise
        for slot in self._slots:
            self._tasks.append(asyncio.create_task(self._sender(slot), name=f"{slot.name}-send"))
            self._tasks.append(
                asyncio.create_task(self._supervisor(slot), name=f"{slot.name}-supervise")
            )
        self._tasks.append(asyncio.create_task(self._expire_multipart(), name="pool-multipart"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._stack.__aexit__(exc_type, exc, tb)

    # -- the transport side -------------------------------------------------------------------

    @property
    def modems(self) -> dict[str, ModemState]:
        return {slot.name: slot.modem.state for slot in self._slots}

    async def send(self, sms: OutboundSms) -> bool:
        """Queue an SMS; True once taken (a message_id seen before is taken once, True)."""
        if sms.message_id in self._known:
            return True
        self._known.add(sms.message_id)
        try:
            parts = encode_submit(
                sms.to, text=sms.text, data=sms.data, status_report=sms.status_report
            )
        except PduError as exc:
            self._result(_Job(sms, ()), SendStatus.FAILED, f"cannot encode: {exc}")
            return True
        async with self._jobs_changed:
            self._jobs.append(_Job(sms, tuple(parts)))
            self._jobs_changed.notify_all()
        return True

    async def submit(self, sms: OutboundSms) -> None:
        """The `gateway.spooled.Carrier` form of `send`."""
        await self.send(sms)

    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            yield await self._events.get()

    def carrier_events(self) -> AsyncIterator[TransportEvent]:
        return self.events()

    def _emit(self, event: TransportEvent) -> None:
        self._events.put_nowait(event)

    # -- sending ------------------------------------------------------------------------------

    async def _sender(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        while True:
            slot.sender_wake.clear()
            if slot.modem.state is not ModemState.READY:
                await slot.sender_wake.wait()
                continue
            delay = slot.next_start - loop.time()
            if delay > 0:
                await self._sleep(delay)  # the per-modem rate limit
            job = await self._take(slot)
            if job is None:
                continue
            slot.next_start = loop.time() + self.config.min_interval
            await self._attempt(slot, job)

    async def _take(self, slot: _Slot) -> _Job | None:
        """The first message this modem may send; None when the modem stopped being READY."""
        loop = asyncio.get_running_loop()
        async with self._jobs_changed:
            while True:
                if slot.modem.state is not ModemState.READY:
                    return None
                now = loop.time()
                for job in self._jobs:
                    if job.eligible(slot.name, now):
                        self._jobs.remove(job)
                        return job
                wake = min((j.wake_at(slot.name) for j in self._jobs), default=None)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if wake is None else max(0.0, wake - now)):
                        await self._jobs_changed.wait()

    async def _attempt(self, slot: _Slot, job: _Job) -> None:
        job.attempts += 1
        job.last_modem = slot.name
        slot.sending = job.sms.message_id
        try:
            for part in job.parts[len(job.references) :]:
                job.references.append(await slot.modem.send_pdu(part))
        except ModemError as exc:
            await self._failed(slot, job, exc.reaction, str(exc))
            return
        except AtError as exc:  # an answer that did not parse
            await self._failed(slot, job, Reaction.UNKNOWN, str(exc))
            return
        finally:
            slot.sending = None
        self._result(job, SendStatus.SENT, None)

    async def _failed(self, slot: _Slot, job: _Job, reaction: Reaction, error: str) -> None:
        rule = RETRY_POLICY[reaction]
        log.warning(
            "%s: sending %s failed (%s): %s", slot.name, job.sms.message_id, reaction.value, error
        )
        if rule.limited:
            job.limited_attempts += 1
        if (
            not rule.retry
            or job.attempts >= self.config.max_attempts
            or (rule.limited and job.limited_attempts >= self.config.unknown_attempts)
        ):
            self._result(job, SendStatus.FAILED, f"{reaction.value}: {error}")
            return
        now = asyncio.get_running_loop().time()
        delay = {
            Delay.NONE: 0.0,
            Delay.BUSY: self.config.busy_backoff,
            Delay.RETRY: self.config.retry_delay,
        }[rule.delay]
        job.not_before = now + delay
        if rule.avoid_modem:
            job.avoid, job.avoid_until = slot.name, now + self.config.avoid_for
        async with self._jobs_changed:
            self._jobs.insert(0, job)  # it was first in line already
            self._jobs_changed.notify_all()

    def _result(self, job: _Job, status: SendStatus, error: str | None) -> None:
        self._emit(
            SendResult(
                event_id=f"send:{job.sms.message_id}",
                message_id=job.sms.message_id,
                status=status,
                at=self._clock(),
                message_references=tuple(job.references) if status is SendStatus.SENT else (),
                recipient=job.sms.to,
                modem=job.last_modem,
                attempts=job.attempts,
                error=error,
            )
        )

    # -- health -------------------------------------------------------------------------------

    async def _supervisor(self, slot: _Slot) -> None:
        delay = self.config.reprobe_initial
        while True:
            slot.supervisor_wake.clear()
            state = slot.modem.state
            if state is ModemState.HUNG:
                await self._reset(slot)
            elif state in (ModemState.OUT_OF_SERVICE, ModemState.CLOSED):
                await self._sleep(delay)
                delay = min(delay * 2, self.config.reprobe_max)
                await self._reset(slot)
            else:
                if state is ModemState.READY:
                    delay = self.config.reprobe_initial
                await slot.supervisor_wake.wait()

    async def _reset(self, slot: _Slot) -> None:
        try:
            await slot.modem.reset()
        except StartupError as exc:
            log.warning("%s: still out of service: %s", slot.name, exc)

    def _modem_event(self, event: ModemEvent) -> None:
        if isinstance(event, ModemStateChanged):
            slot = self._by_name.get(event.modem)
            if slot is not None:
                slot.sender_wake.set()
                slot.supervisor_wake.set()
            self._emit(
                TransportModemState(
                    event_id=f"modem:{uuid.uuid4()}",
                    modem=event.modem,
                    status=_STATUS[event.state],
                    at=self._clock(),
                    detail=event.reason,
                )
            )
            # Wake senders waiting on the job list so they notice the state change.
            task = asyncio.get_running_loop().create_task(self._notify_jobs())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif isinstance(event, StorageFull):
            self._emit(
                TransportModemState(
                    f"modem:{uuid.uuid4()}",
                    event.modem,
                    ModemStatus.SIM_FULL,
                    self._clock(),
                    event.reason,
                )
            )
        elif isinstance(event, StatusReportReceived):
            report = event.report
            self._emit(
                DeliveryReport(
                    event_id=f"report:{event.sms.fingerprint}",
                    message_id=None,  # matched by the spool (modem, reference, recipient)
                    recipient=report.recipient,
                    message_reference=event.message_reference,
                    status=report.status,
                    discharge_time=report.discharge_time,
                    at=self._clock(),
                    modem=event.modem,
                )
            )
        elif isinstance(event, InboundPersisted) and isinstance(event.sms.decoded, Deliver):
            message = self._reassembler.add(event.sms)
            if message is not None:
                self._inbound(message)

    async def _notify_jobs(self) -> None:
        async with self._jobs_changed:
            self._jobs_changed.notify_all()

    # -- inbound ------------------------------------------------------------------------------

    def _inbound(self, message: AssembledMessage) -> None:
        first = message.parts[0]
        key = "|".join(p.fingerprint for p in message.parts)
        delivers = message.delivers
        self._emit(
            InboundSms(
                event_id="sms:" + hashlib.sha256(key.encode()).hexdigest(),
                sender=message.sender,
                received_at=max(p.received_at for p in message.parts),
                text=message.text,
                data=None if message.text is not None else message.data,
                smsc_timestamp=delivers[0].timestamp if delivers else None,
                modem=first.modem,
                complete=message.complete,
                raw_pdus=tuple(p.pdu for p in message.parts),
            )
        )

    async def _expire_multipart(self) -> None:
        while True:
            await asyncio.sleep(self.config.reassembly_check_interval)
            for message in self._reassembler.expire():
                self._inbound(message)
