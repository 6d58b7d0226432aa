"""N modems behind one `send(sms) -> accepted` and one event stream.

Scheduling: every modem has its own sender task that takes the next message it may send
from one shared list as soon as the modem is READY and its rate limit allows, so a slow or
failing modem never holds up messages another modem could send (no head-of-line blocking).
A modem sends one SMS (all its parts, in order) at a time. A failed attempt goes back to the
list according to RETRY_POLICY, usually avoiding the modem it failed on for a while.

Health: every modem has a supervisor task: a HUNG modem is reset at once; a modem that is
OUT_OF_SERVICE (start-up failed: no SIM, PIN, no network, no answer) is re-probed with
doubling back-off.

Sending with a journal (the gateway's spool): each part is stored on the modem (`AT+CMGW`),
journalled, sent from storage (`AT+CMSS`), journalled as sent, then deleted
(gateway/pool/journal.py). A part whose send was interrupted (a crash, a hang) stays
journalled as stored; when its modem is READY again the stored copy's status says whether it
went out, and until then the message waits for that modem (at most `stored_wait` seconds)
instead of being sent again elsewhere. Without a journal the pool sends with `AT+CMGS`.

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
from gateway.at.errors import (
    AtError,
    CommandError,
    ModemError,
    Reaction,
    StartupError,
    StorageFullError,
)
from gateway.at.events import (
    InboundPersisted,
    ModemEvent,
    ModemState,
    ModemStateChanged,
    StatusReportReceived,
    StorageFull,
)
from gateway.at.modem import STO_SENT, Modem, PersistCallback
from gateway.at.multipart import AssembledMessage, Reassembler
from gateway.pdu import Deliver, PduError, SubmitPart, encode_submit
from gateway.pool.journal import JournalledPart, SendJournal, same_submit
from gateway.pool.policy import RETRY_POLICY, Delay, PoolConfig
from gateway.pool.signal import SignalThrottle, signal_percent, signal_rssi
from gateway.transport import (
    SIGNAL_DETAIL,
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

#: Events handed to the spool at most in one batch (one commit).
EVENT_BATCH = 256

_STATUS: dict[ModemState, ModemStatus] = {
    ModemState.STARTING: ModemStatus.STARTING,
    ModemState.READY: ModemStatus.READY,
    ModemState.HUNG: ModemStatus.HUNG,
    ModemState.OUT_OF_SERVICE: ModemStatus.OUT_OF_SERVICE,
    ModemState.CLOSED: ModemStatus.OUT_OF_SERVICE,
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def _concat_ref(message_id: str) -> int:
    """The concatenation reference of a long message: the same whenever it is (re)sent, and
    different for two messages to one handset (almost always), which reassembles by it."""
    return hashlib.sha256(message_id.encode()).digest()[0]


@dataclass(slots=True)
class _Job:
    sms: OutboundSms
    parts: tuple[SubmitPart, ...]
    sent: dict[int, int | None] = field(default_factory=dict)  # part → reference (if known)
    attempts: int = 0
    limited_attempts: int = 0
    not_before: float = 0.0
    avoid: str | None = None
    avoid_until: float = 0.0
    last_modem: str = ""
    # A modem holds a stored part whose send may have happened: only it may take the job
    # (it first reads the stored copy's status) until `pinned_until`.
    pinned: str | None = None
    pinned_until: float = 0.0
    unresolved_on: str | None = None  # a part's AT+CMSS on this modem has no outcome yet

    def eligible(self, modem: str, now: float) -> bool:
        if self.pinned is not None and modem != self.pinned and now < self.pinned_until:
            return False
        return self.not_before <= now and (modem != self.avoid or self.avoid_until <= now)

    def wake_at(self, modem: str) -> float:
        pinned = self.pinned_until if self.pinned is not None and modem != self.pinned else 0.0
        return max(self.not_before, self.avoid_until if modem == self.avoid else 0.0, pinned)

    def pin(self, modem: str, now: float, wait: float, *, renew: bool = False) -> None:
        """Only `modem` may take the job for `wait` seconds; a pin already on `modem` keeps
        its deadline unless `renew` (a new send cut short there starts a new wait)."""
        if self.pinned != modem or renew:
            self.pinned, self.pinned_until = modem, now + wait

    @property
    def references(self) -> tuple[int, ...]:
        return tuple(ref for _, ref in sorted(self.sent.items()) if ref is not None)


@dataclass(slots=True)
class _Slot:
    modem: Modem
    # One event per waiter, each cleared only by its own waiter before it looks at the state.
    sender_wake: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor_wake: asyncio.Event = field(default_factory=asyncio.Event)
    next_start: float = 0.0
    sending: str | None = None  # message_id in flight
    resolve_due: bool = True  # READY again: settle the parts stored here before sending more
    marks_checked: bool = False
    # Held by the sender for a whole send (all parts) or a resolve: the signal re-read
    # takes it too, so that it only ever runs between sends.
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)

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
        journal: SendJournal | None = None,
        config: PoolConfig | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if len({m.label for m in modems}) != len(modems):
            raise ValueError("modem names (or ports) must be unique in a pool")
        self._modem_configs = list(modems)
        self._persist = persist
        self._journal = journal
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
        self._signal = SignalThrottle(self.config.signal_min_gap)

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
            if self.config.signal_interval > 0:
                self._tasks.append(
                    asyncio.create_task(self._signal_watch(slot), name=f"{slot.name}-signal")
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
                sms.to,
                text=sms.text,
                data=sms.data,
                status_report=sms.status_report,
                concat_ref=_concat_ref(sms.message_id),
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

    async def carrier_event_batches(self) -> AsyncIterator[list[TransportEvent]]:
        """Every event ready at once (gateway.spooled.BatchingCarrier): one spool commit."""
        while True:
            ready = [await self._events.get()]
            while len(ready) < EVENT_BATCH and not self._events.empty():
                ready.append(self._events.get_nowait())
            yield ready

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
            if slot.resolve_due and self._stores(slot):
                async with slot.busy:
                    await self._resolve(slot)
                continue
            delay = slot.next_start - loop.time()
            if delay > 0:
                await self._sleep(delay)  # the per-modem rate limit
            job = await self._take(slot)
            if job is None:
                continue
            slot.next_start = loop.time() + self.config.min_interval
            async with slot.busy:
                await self._attempt(slot, job)

    async def _take(self, slot: _Slot) -> _Job | None:
        """The first message this modem may send; None when the modem stopped being READY."""
        loop = asyncio.get_running_loop()
        async with self._jobs_changed:
            while True:
                if slot.modem.state is not ModemState.READY:
                    return None
                if slot.resolve_due and self._stores(slot):
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

    def _stores(self, slot: _Slot) -> bool:
        return self._journal is not None and slot.modem.config.store_then_send

    async def _attempt(self, slot: _Slot, job: _Job) -> None:
        slot.sending = job.sms.message_id
        try:
            if self._journal is not None and not await self._settled_before(slot, job):
                await self._put_back(job)  # waits for the modem holding a part
                return
            job.attempts += 1
            job.last_modem = slot.name
            if self._stores(slot):
                await self._store_and_send(slot, job)
            else:
                for seq, part in enumerate(job.parts):
                    if seq not in job.sent:
                        job.sent[seq] = await slot.modem.send_pdu(part)
        except ModemError as exc:
            await self._failed(slot, job, exc.reaction, str(exc))
            return
        except AtError as exc:  # an answer that did not parse
            await self._failed(slot, job, Reaction.UNKNOWN, str(exc))
            return
        except Exception as exc:  # the journal could not be written: try again later
            log.exception("%s: sending %s failed", slot.name, job.sms.message_id)
            await self._failed(slot, job, Reaction.UNKNOWN, repr(exc))
            return
        finally:
            slot.sending = None
        job.pinned = None
        self._result(job, SendStatus.SENT, None)

    # -- store-then-send ----------------------------------------------------------------------

    async def _settled_before(self, slot: _Slot, job: _Job) -> bool:
        """Takes in what the journal knows of the job's parts; False when a part stored on
        another modem may have been sent (the job must wait for that modem)."""
        assert self._journal is not None
        known = await self._journal.parts_of(job.sms.message_id)
        now = asyncio.get_running_loop().time()
        for entry in known.values():
            if entry.sent:
                job.sent.setdefault(entry.part, entry.reference)
            elif entry.modem == slot.name:
                try:
                    if await self._resolve_part(slot, entry):
                        job.sent[entry.part] = None
                except AtError as exc:
                    # Unreadable now (a SIM still starting after a reset...): the part may
                    # have gone out, so the job neither fails nor moves; it asks again.
                    log.warning(
                        "%s: cannot read back part %d of %s: %s",
                        slot.name,
                        entry.part + 1,
                        job.sms.message_id,
                        exc,
                    )
                    job.pin(slot.name, now, self.config.stored_wait)
                    job.not_before = now + self.config.retry_delay
                    return False
            elif entry.modem in self._by_name and (
                job.pinned != entry.modem or now < job.pinned_until
            ):
                job.pin(entry.modem, now, self.config.stored_wait)
                return False
            else:
                log.warning(
                    "%s: part %d of %s is stored on %s, which has not come back in %g s: "
                    "sending it again (it may arrive twice)",
                    slot.name,
                    entry.part + 1,
                    job.sms.message_id,
                    entry.modem,
                    self.config.stored_wait,
                )
                await self._journal.part_dropped(
                    entry.message_id, entry.part, modem=entry.modem, slot=entry.slot
                )
        return self._same_modem_for_the_rest(slot, job, known, now)

    def _same_modem_for_the_rest(
        self, slot: _Slot, job: _Job, known: dict[int, JournalledPart], now: float
    ) -> bool:
        """A long message half sent (before a crash, or a failed part) goes on from the
        modem that sent its first parts: from another SIM the handset could not join them."""
        if len(job.sent) == len(job.parts):
            return True
        senders = {e.modem for e in known.values() if e.sent and e.modem in self._by_name}
        if not senders or slot.name in senders:
            if job.pinned == slot.name:
                job.pinned = None
            return True
        holder = min(senders)
        if job.pinned != holder or now < job.pinned_until:
            job.pin(holder, now, self.config.stored_wait)
            return False
        log.warning(
            "%s: %s was begun on %s, which has not come back in %g s: sending the rest here",
            slot.name,
            job.sms.message_id,
            holder,
            self.config.stored_wait,
        )
        return True

    async def _store_and_send(self, slot: _Slot, job: _Job) -> None:
        assert self._journal is not None
        message_id = job.sms.message_id
        for seq, part in enumerate(job.parts):
            if seq in job.sent:
                continue
            try:
                index = await slot.modem.store_pdu(part)
            except StorageFullError:
                # No slot to store it in (the modem is draining its storage meanwhile):
                # sending now matters more; this one part is not crash-safe.
                log.warning(
                    "%s: storage full: part %d of %s goes with AT+CMGS",
                    slot.name,
                    seq + 1,
                    message_id,
                )
                direct = await slot.modem.send_pdu(part)
                await self._journal.part_stored(message_id, seq, slot.name, 0, part.hex)
                await self._journal.part_sent(message_id, seq, direct, modem=slot.name, slot=0)
                job.sent[seq] = direct
                continue
            await self._journal.part_stored(message_id, seq, slot.name, index, part.hex)
            job.unresolved_on = slot.name
            try:
                reference = await slot.modem.send_stored(index)
            except CommandError:
                # The modem answered with an error: the stored copy did not go out.
                job.unresolved_on = None
                await self._journal.part_dropped(message_id, seq, modem=slot.name, slot=index)
                await self._free(slot, index)
                raise
            # A timeout or a lost port leaves the part journalled as stored: whether it went
            # out is read from the stored copy once the modem is back (`_resolve`).
            job.unresolved_on = None
            await self._journal.part_sent(message_id, seq, reference, modem=slot.name, slot=index)
            job.sent[seq] = reference
            await self._check_marks_sent(slot, index)
            await self._free(slot, index)

    async def _resolve(self, slot: _Slot) -> None:
        """The modem is READY (again): settle every part stored on it whose send has no
        outcome, then delete stored outgoing messages nobody is waiting for."""
        assert self._journal is not None
        slot.resolve_due = False
        try:
            for entry in await self._journal.stored_on(slot.name):
                try:
                    await self._resolve_part(slot, entry)
                except CommandError as exc:  # left as it is: its job waits or its pin ends
                    log.warning("%s: cannot read stored slot %d: %s", slot.name, entry.slot, exc)
            try:
                outgoing = await slot.modem.list_outgoing()
            except CommandError as exc:
                log.warning("%s: cannot list stored outgoing messages: %s", slot.name, exc)
                outgoing = []
            waiting = {entry.slot for entry in await self._journal.stored_on(slot.name)}
            for listed in outgoing:
                if listed.index is not None and listed.index not in waiting:
                    log.info("%s: deleting leftover stored message %d", slot.name, listed.index)
                    await self._free(slot, listed.index)
        except AtError as exc:  # a timeout: the modem is hung; this runs again once it is back
            log.warning("%s: settling stored messages failed: %s", slot.name, exc)
        except Exception:
            log.exception("%s: settling stored messages failed", slot.name)
        await self._notify_jobs()  # jobs waiting for this modem may go on

    async def _resolve_part(self, slot: _Slot, entry: JournalledPart) -> bool:
        """Whether a part stored on this modem went out (journalled either way)."""
        assert self._journal is not None
        listed = await slot.modem.read_stored(entry.slot)
        ours = listed is not None and same_submit(listed.pdu, entry.pdu, length=listed.length)
        sent = ours and listed is not None and listed.stat == STO_SENT
        if not ours:
            log.warning(
                "%s: slot %d no longer holds part %d of %s: sending it again (it may arrive twice)",
                slot.name,
                entry.slot,
                entry.part + 1,
                entry.message_id,
            )
        log.info(
            "%s: part %d of %s stored in slot %d was %s",
            slot.name,
            entry.part + 1,
            entry.message_id,
            entry.slot,
            "sent" if sent else "not sent",
        )
        # Journalled before the slot is freed: a crash in between leaves only a leftover.
        if sent:
            await self._journal.part_sent(
                entry.message_id, entry.part, None, modem=entry.modem, slot=entry.slot
            )
        else:
            await self._journal.part_dropped(
                entry.message_id, entry.part, modem=entry.modem, slot=entry.slot
            )
        if ours:
            await self._free(slot, entry.slot)
        return sent

    async def _check_marks_sent(self, slot: _Slot, index: int) -> None:
        """Once per modem: does it mark a message sent from storage STO SENT? If not, a
        crash during a send cannot be told from a send that never happened."""
        if slot.marks_checked:
            return
        slot.marks_checked = True
        try:
            listed = await slot.modem.read_stored(index)
        except AtError as exc:
            log.warning("%s: could not read back a sent message: %s", slot.name, exc)
            return
        if listed is not None and listed.stat != STO_SENT:
            log.warning(
                "%s: the modem leaves messages sent with AT+CMSS as stored-unsent: an SMS in "
                "flight when the gateway crashes may be sent twice",
                slot.name,
            )

    async def _free(self, slot: _Slot, index: int) -> None:
        try:
            await slot.modem.delete(index)
        except AtError as exc:  # a leftover: deleted when the modem is next READY
            log.warning("%s: could not delete stored message %d: %s", slot.name, index, exc)

    async def _put_back(self, job: _Job) -> None:
        async with self._jobs_changed:
            self._jobs.insert(0, job)
            self._jobs_changed.notify_all()

    async def _failed(self, slot: _Slot, job: _Job, reaction: Reaction, error: str) -> None:
        rule = RETRY_POLICY[reaction]
        log.warning(
            "%s: sending %s failed (%s): %s", slot.name, job.sms.message_id, reaction.value, error
        )
        if rule.limited:
            job.limited_attempts += 1
        now = asyncio.get_running_loop().time()
        if job.unresolved_on is not None:
            # A part may have gone out: neither fail the message nor send it elsewhere before
            # the modem says whether it did.
            job.pin(job.unresolved_on, now, self.config.stored_wait, renew=True)
            job.unresolved_on = None
            await self._put_back(job)
            return
        if (
            not rule.retry
            or job.attempts >= self.config.max_attempts
            or (rule.limited and job.limited_attempts >= self.config.unknown_attempts)
        ):
            self._result(job, SendStatus.FAILED, f"{reaction.value}: {error}")
            return
        delay = {
            Delay.NONE: 0.0,
            Delay.BUSY: self.config.busy_backoff,
            Delay.RETRY: self.config.retry_delay,
        }[rule.delay]
        job.not_before = now + delay
        if rule.avoid_modem:
            job.avoid, job.avoid_until = slot.name, now + self.config.avoid_for
        await self._put_back(job)  # it was first in line already

    def _result(self, job: _Job, status: SendStatus, error: str | None) -> None:
        self._emit(
            SendResult(
                event_id=f"send:{job.sms.message_id}",
                message_id=job.sms.message_id,
                status=status,
                at=self._clock(),
                message_references=job.references if status is SendStatus.SENT else (),
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

    # -- signal -------------------------------------------------------------------------------

    async def _signal_watch(self, slot: _Slot) -> None:
        # asyncio.sleep, not the injectable one: tests that make waits instant would spin here.
        while True:
            await asyncio.sleep(self.config.signal_interval)
            await self.poll_signal(slot.name)

    async def poll_signal(self, modem: str) -> bool:
        """Re-read one modem's signal between sends; True when the reading was published
        (a modem-state event with the same status). A modem not READY is skipped."""
        slot = self._by_name.get(modem)
        if slot is None:
            raise KeyError(f"no modem {modem!r} in the pool")
        async with slot.busy:
            if slot.modem.state is not ModemState.READY:
                return False
            try:
                reading = await slot.modem.refresh_signal()
            except AtError as exc:  # a timeout has marked it HUNG: the supervisor resets it
                log.warning("%s: signal re-read failed: %s", modem, exc)
                return False
        now = asyncio.get_running_loop().time()
        if not self._signal.due(modem, signal_percent(reading), now):
            return False
        self._emit(self._state_event(slot.modem.state_event(SIGNAL_DETAIL)))
        return True

    def _state_event(
        self, event: ModemStateChanged, status: ModemStatus | None = None
    ) -> TransportModemState:
        """The transport's modem-state event, with the signal, operator and IMEI the modem
        last reported; counts as the signal published."""
        percent = signal_percent(event.signal)
        self._signal.published(event.modem, percent, asyncio.get_running_loop().time())
        return TransportModemState(
            event_id=f"modem:{uuid.uuid4()}",
            modem=event.modem,
            status=status or _STATUS[event.state],
            at=self._clock(),
            detail=event.reason,
            signal_rssi=signal_rssi(event.signal),
            signal_percent=percent,
            operator=event.operator,
            imei=event.imei,
        )

    def _modem_event(self, event: ModemEvent) -> None:
        if isinstance(event, ModemStateChanged):
            slot = self._by_name.get(event.modem)
            if slot is not None:
                if event.state is ModemState.READY:
                    slot.resolve_due = True
                slot.sender_wake.set()
                slot.supervisor_wake.set()
            self._emit(self._state_event(event))
            # Wake senders waiting on the job list so they notice the state change.
            task = asyncio.get_running_loop().create_task(self._notify_jobs())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif isinstance(event, StorageFull):
            slot = self._by_name.get(event.modem)
            if slot is not None:
                slot.resolve_due = True  # leftover stored messages go first
                slot.sender_wake.set()
            if slot is None:
                current = ModemStateChanged(event.modem, ModemState.READY)
            else:
                current = slot.modem.state_event(event.reason)
            self._emit(self._state_event(current, ModemStatus.SIM_FULL))
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
