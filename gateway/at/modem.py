"""One GSM modem: start-up, sending, delete-after-persist receiving, storage sweeps, resets.

`async with Modem(config, persist=...) as modem:` opens the port, runs the start-up sequence
and starts two background tasks: the inbound worker (one item at a time: a `+CMTI` index to
read, a `+CMT`/`+CDS` PDU, a storage sweep) and the poller that asks for a sweep every
`storage_poll_interval` seconds. A command that times out marks the modem HUNG; whoever owns
the modem calls `reset()`, which works from any state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar

from gateway.at.config import ModemConfig
from gateway.at.errors import (
    AtError,
    CommandError,
    CommandTimeout,
    ErrorSource,
    InvalidIndexError,
    ModemClosed,
    ModemError,
    ModemHung,
    Reaction,
    StartupError,
    StorageFullError,
    UnknownModemError,
)
from gateway.at.events import (
    InboundPersisted,
    InboundSms,
    ModemEvent,
    ModemState,
    ModemStateChanged,
    PersistFailed,
    StatusReportReceived,
    StorageChecked,
    StorageFull,
    Unsolicited,
)
from gateway.at.port import AtPort
from gateway.at.protocol import AtProtocol, Expect, Response, Urc
from gateway.at.responses import (
    ListedPdu,
    RegistrationStatus,
    ResponseError,
    Signal,
    StorageStatus,
    parse_cgsn,
    parse_cmgs,
    parse_cmgw,
    parse_cmss,
    parse_cops,
    parse_cpms_query,
    parse_creg,
    parse_csq,
    parse_index_urc,
    parse_pdu_listing,
)
from gateway.at.startup import CREG_ANSWER, ModemInfo, StartUp
from gateway.pdu import PduError, StatusReport, SubmitPart, decode

log = logging.getLogger(__name__)

PersistCallback = Callable[[InboundSms], Awaitable[None]]
EventCallback = Callable[[ModemEvent], None]

_RECEIVED = (0, 1)  # +CMGL/+CMGR stat: received unread / read (2, 3 are stored outgoing)
_STORED_OUTGOING = (2, 3)  # stored unsent / stored sent
STO_UNSENT, STO_SENT = _STORED_OUTGOING
_STORAGE_FULL_URCS = frozenset({"^SMMEMFULL"})
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Read:
    storage: str
    index: int


@dataclass(frozen=True, slots=True)
class _Direct:
    urc: Urc


@dataclass(frozen=True, slots=True)
class _Sweep:
    pass


_WorkItem = _Read | _Direct | _Sweep


class Modem:
    def __init__(
        self,
        config: ModemConfig,
        *,
        persist: PersistCallback,
        on_event: EventCallback | None = None,
        raise_on_startup_failure: bool = True,
    ) -> None:
        self.config = config
        self.name = config.label
        self._persist = persist
        self._on_event = on_event
        self._strict = raise_on_startup_failure
        self._port: AtPort | None = None
        self._state = ModemState.CLOSED
        self.info: ModemInfo | None = None
        # What the hub shows of the modem: read at each start-up (IMEI, operator) and the
        # signal again whenever the owner asks (`refresh_signal`); None while unknown.
        self.imei: str | None = None
        self.operator: str | None = None
        self.signal_reading: Signal | None = None
        self._work: asyncio.Queue[_WorkItem] = asyncio.Queue()
        self._sweep_queued = False
        self._ready = asyncio.Event()
        self._reset_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def state(self) -> ModemState:
        return self._state

    # -- lifetime -----------------------------------------------------------------------------

    async def __aenter__(self) -> Modem:
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"{self.name}-inbound"),
            asyncio.create_task(self._poller(), name=f"{self.name}-poller"),
        ]
        try:
            async with self._reset_lock:
                await self._bring_up()
        except StartupError:
            if self._strict:
                await self._shutdown()
                raise
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._ready.clear()
        await self._close_port()
        self._set_state(ModemState.CLOSED, "closed")

    async def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            await port.close()

    async def _open_port(self) -> AtPort:
        last: ModemError | None = None
        for attempt in range(max(1, self.config.reopen_attempts)):
            if attempt:
                await asyncio.sleep(self.config.reopen_interval)
            port = AtPort(self.config.port, baudrate=self.config.baudrate, name=self.name)
            try:
                return await port.__aenter__()
            except ModemClosed as exc:  # the USB device may still be re-enumerating
                last = exc
        raise StartupError("open", str(last), Reaction.HUNG)

    async def _bring_up(self) -> None:
        self._set_state(ModemState.STARTING, "start-up")
        try:
            port = await self._open_port()
            self._port = port
            port.protocol.subscribe(self._on_urc)
            self.info = await StartUp(port.protocol, self.config).run()
            self.signal_reading = self.info.signal
            await self._read_details(port.protocol)
        except StartupError as exc:
            await self._close_port()
            self._set_state(ModemState.OUT_OF_SERVICE, str(exc), exc.reaction)
            raise
        self._set_state(ModemState.READY, "started")
        self._ready.set()
        self.request_sweep()  # whatever arrived while we were away is still in storage

    async def _read_details(self, protocol: AtProtocol) -> None:
        """IMEI (`AT+CGSN`) and operator (`AT+COPS?`) for the status page: a modem that
        refuses either, or answers something unreadable, works all the same."""
        self.imei = await self._detail(protocol, "AT+CGSN", (), lambda r: parse_cgsn(r.lines))
        self.operator = await self._detail(
            protocol, "AT+COPS?", ("+COPS:",), lambda r: parse_cops(r.first("+COPS:") or "")
        )

    async def _detail(
        self,
        protocol: AtProtocol,
        command: str,
        expect: tuple[Expect, ...],
        parse: Callable[[Response], _T],
    ) -> _T | None:
        try:
            response = await protocol.command(
                command, time_limit=self.config.command_timeout, expect=expect
            )
            return parse(response)
        except CommandTimeout as exc:  # as every start-up step: no answer is a hung modem
            raise StartupError(command, str(exc), Reaction.HUNG) from exc
        except (CommandError, ResponseError) as exc:
            log.info("%s: %s gave nothing usable (%s); carrying on", self.name, command, exc)
            return None

    async def reset(self) -> None:
        """Reboot the modem (`AT+CFUN=1,1`, answered or not), reopen the port, start up again.

        Raises StartupError when the modem does not come back (state OUT_OF_SERVICE); call
        again later.
        """
        async with self._reset_lock:
            self._ready.clear()
            self._set_state(ModemState.STARTING, "reset")
            port = self._port
            if port is not None:
                limit = self.config.reset_timeout
                with contextlib.suppress(AtError, TimeoutError):
                    # A wedged modem often ignores this too; the port reopen is what counts.
                    # The outer limit also bounds waiting for a command stuck in flight.
                    async with asyncio.timeout(limit):
                        await port.protocol.command("AT+CFUN=1,1", time_limit=limit, force=True)
            await self._close_port()
            await self._bring_up()

    # -- state and events ---------------------------------------------------------------------

    def _set_state(self, state: ModemState, reason: str, reaction: Reaction | None = None) -> None:
        if state is self._state and state is not ModemState.OUT_OF_SERVICE:
            return
        self._state = state
        log.info("%s: %s (%s)", self.name, state.value, reason)
        self._emit(self.state_event(reason, reaction))

    def state_event(self, reason: str, reaction: Reaction | None = None) -> ModemStateChanged:
        """The current state with what is known of the modem (signal, operator, IMEI)."""
        return ModemStateChanged(
            self.name,
            self._state,
            reason,
            reaction,
            signal=self.signal_reading,
            operator=self.operator,
            imei=self.imei,
        )

    def _emit(self, event: ModemEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("%s: event callback failed on %r", self.name, event)

    def _mark_hung(self, protocol: AtProtocol, reason: str) -> None:
        # A failure on the protocol of a port that a reset already replaced says nothing
        # about the modem now.
        current = self._port
        if self._state is ModemState.READY and current is not None and current.protocol is protocol:
            self._ready.clear()
            self._set_state(ModemState.HUNG, reason, Reaction.HUNG)

    def _protocol(self) -> AtProtocol:
        if self._state is ModemState.HUNG:
            raise ModemHung(f"{self.name}: hung; reset it first")
        if self._state is not ModemState.READY or self._port is None:
            raise ModemClosed(f"{self.name}: not ready ({self._state.value})")
        return self._port.protocol

    async def _call(self, protocol: AtProtocol, operation: Awaitable[_T]) -> _T:
        """Every modem command goes through here: timeouts mark the modem hung, a full
        storage (CMS 322, whatever the command) starts a drain."""
        try:
            return await operation
        except (CommandTimeout, ModemClosed) as exc:
            self._mark_hung(protocol, str(exc))
            raise
        except StorageFullError as exc:
            self._storage_full(f"{exc.command}: {exc.final}")
            raise

    async def command(
        self, command: str, expect: tuple[Expect, ...] = (), *, time_limit: float | None = None
    ) -> Response:
        protocol = self._protocol()
        return await self._call(
            protocol,
            protocol.command(
                command, time_limit=time_limit or self.config.command_timeout, expect=expect
            ),
        )

    # -- operations ---------------------------------------------------------------------------

    async def send_pdu(self, part: SubmitPart) -> int:
        """Send one SMS-SUBMIT; returns the message reference (0-255) from `+CMGS:`."""
        return await self._with_pdu("+CMGS", part, self.config.send_timeout, parse_cmgs)

    async def store_pdu(self, part: SubmitPart) -> int:
        """`AT+CMGW`: writes an SMS-SUBMIT to the message storage (STO UNSENT); its index.

        With `send_stored` this is store-then-send: the stored copy's status (STO SENT or
        STO UNSENT) tells, after a crash or a hang, whether the SMS went out.
        """
        return await self._with_pdu("+CMGW", part, self.config.command_timeout, parse_cmgw)

    async def _with_pdu(
        self, name: str, part: SubmitPart, time_limit: float, parse: Callable[[str], int]
    ) -> int:
        """`AT<name>=<length>`, the PDU after the `> ` prompt; the number on its `<name>:`
        line (a reference or an index)."""
        command = f"AT{name}={part.tpdu_length}"
        prefix = f"{name}:"
        protocol = self._protocol()
        response = await self._call(
            protocol,
            protocol.command_with_prompt(
                command,
                part.hex,
                prompt_time_limit=self.config.prompt_timeout,
                time_limit=time_limit,
                expect=(prefix,),
            ),
        )
        answer = response.first(prefix)
        if answer is None:
            raise UnknownModemError(command, ErrorSource.PLAIN, None, f"OK without {prefix}")
        try:
            return parse(answer)
        except ResponseError as exc:
            raise UnknownModemError(command, ErrorSource.PLAIN, None, str(exc)) from exc

    async def send_stored(self, index: int) -> int | None:
        """`AT+CMSS=<index>`: sends a stored SMS-SUBMIT; its message reference, or None when
        the modem said OK without a readable one (the SMS went out all the same)."""
        command = f"AT+CMSS={index}"
        protocol = self._protocol()
        response = await self._call(
            protocol,
            protocol.command(
                command, time_limit=self.config.send_timeout, expect=("+CMSS:", "+CMGS:")
            ),
        )
        answer = response.first("+CMSS:") or response.first("+CMGS:")
        if answer is None:
            log.warning("%s: %s answered OK without a message reference", self.name, command)
            return None
        try:
            return parse_cmss(answer)
        except ResponseError as exc:
            log.warning("%s: %s: %s", self.name, command, exc)
            return None

    async def read_stored(self, index: int) -> ListedPdu | None:
        """`AT+CMGR=<index>` as listed (status and PDU, undecoded); None for an empty slot."""
        try:
            response = await self.command(f"AT+CMGR={index}", ("+CMGR:",))
        except InvalidIndexError:
            return None
        listed = parse_pdu_listing(response.lines, "+CMGR:")
        return ListedPdu(index, listed[0].stat, listed[0].length, listed[0].pdu) if listed else None

    async def list_outgoing(self) -> list[ListedPdu]:
        """Stored outgoing messages, unsent (`AT+CMGL=2`) and sent (`AT+CMGL=3`)."""
        found: list[ListedPdu] = []
        for stat in _STORED_OUTGOING:
            response = await self.command(f"AT+CMGL={stat}", ("+CMGL:",))
            found += parse_pdu_listing(response.lines, "+CMGL:")
        return found

    async def read(self, index: int) -> InboundSms | None:
        """`AT+CMGR=<index>`; None for an empty slot (some modems answer a bare OK)."""
        response = await self.command(f"AT+CMGR={index}", ("+CMGR:",))
        listed = parse_pdu_listing(response.lines, "+CMGR:")
        if not listed:
            return None
        return self._inbound(listed[0], index)

    async def delete(self, index: int) -> None:
        await self.command(f"AT+CMGD={index}")

    async def list_stored(self) -> list[InboundSms]:
        """Everything in the message storage (`AT+CMGL=4`), received or not."""
        response = await self.command("AT+CMGL=4", ("+CMGL:",))
        return [
            self._inbound(item, item.index) for item in parse_pdu_listing(response.lines, "+CMGL:")
        ]

    async def storage_status(self) -> StorageStatus:
        response = await self.command("AT+CPMS?", ("+CPMS:",))
        answer = response.first("+CPMS:")
        if answer is None:
            raise ResponseError("AT+CPMS? gave no +CPMS: line")
        return parse_cpms_query(answer)

    async def signal(self) -> Signal:
        response = await self.command("AT+CSQ", ("+CSQ:",))
        return parse_csq(response.first("+CSQ:") or "")

    async def refresh_signal(self) -> Signal | None:
        """`AT+CSQ` again; the reading, kept in `signal_reading`. A modem that refuses it or
        answers junk keeps working and its signal becomes unknown (None); a timeout marks
        it hung as any command's does (and raises)."""
        try:
            reading: Signal | None = await self.signal()
        except (CommandError, ResponseError) as exc:
            log.info("%s: AT+CSQ gave nothing usable (%s)", self.name, exc)
            reading = None
        self.signal_reading = reading
        return reading

    async def registration(self) -> RegistrationStatus:
        response = await self.command("AT+CREG?", (CREG_ANSWER,))
        return parse_creg(response.first("+CREG:") or "")

    def request_sweep(self) -> None:
        """Ask the inbound worker to list the storage and take everything in it."""
        if not self._sweep_queued:
            self._sweep_queued = True
            self._work.put_nowait(_Sweep())

    # -- inbound ------------------------------------------------------------------------------

    def _storage_name(self) -> str | None:
        storage = self.info.storage if self.info is not None else None
        return storage.storage if storage is not None else None

    def _inbound(self, listed: ListedPdu, index: int | None) -> InboundSms:
        return self._decoded(listed.pdu, self._storage_name(), index, listed.stat)

    def _decoded(
        self, pdu: str, storage: str | None, index: int | None, stat: int | None
    ) -> InboundSms:
        now = datetime.now(UTC)
        try:
            decoded = decode(pdu).pdu
        except PduError as exc:
            return InboundSms(self.name, pdu, None, str(exc), now, storage, index, stat)
        return InboundSms(self.name, pdu, decoded, None, now, storage, index, stat)

    def _on_urc(self, urc: Urc) -> None:
        if urc.name in ("+CMTI", "+CDSI"):
            try:
                storage, index = parse_index_urc(urc.args, urc.name)
            except ResponseError as exc:
                log.warning("%s: %s; sweeping instead", self.name, exc)
                self.request_sweep()
                return
            self._work.put_nowait(_Read(storage, index))
        elif urc.name in ("+CMT", "+CDS"):
            self._work.put_nowait(_Direct(urc))
        elif urc.name in _STORAGE_FULL_URCS:
            self._storage_full(urc.line)
        else:
            self._emit(Unsolicited(self.name, urc))

    def _storage_full(self, reason: str) -> None:
        log.warning("%s: message storage full (%s): draining", self.name, reason)
        self._emit(StorageFull(self.name, reason))
        self.request_sweep()

    async def _worker(self) -> None:
        while True:
            await self._ready.wait()
            item = await self._work.get()
            try:
                await self._handle(item)
            except AtError as exc:
                # Hangs are already marked; whatever is still stored is found by the sweep
                # that follows the reset.
                log.warning("%s: inbound %r failed: %s", self.name, item, exc)
            except Exception:
                log.exception("%s: inbound %r failed", self.name, item)

    async def _poller(self) -> None:
        while True:
            await asyncio.sleep(self.config.storage_poll_interval)
            if self._ready.is_set():
                self.request_sweep()

    async def _handle(self, item: _WorkItem) -> None:
        if isinstance(item, _Sweep):
            self._sweep_queued = False  # a request made during this sweep queues another
            await self._sweep()
        elif isinstance(item, _Read):
            await self._take_index(item)
        else:
            await self._take_direct(item.urc)

    async def _take_index(self, item: _Read) -> None:
        current = self._storage_name()
        if current is not None and item.storage and item.storage != current:
            log.info(
                "%s: %s index %d is outside %s; sweeping",
                self.name,
                item.storage,
                item.index,
                current,
            )
        try:
            sms = await self.read(item.index)
        except InvalidIndexError:
            sms = None
        if sms is None:
            # A stale or wrong index: skip it and look at what is really there (no retry of
            # the same index, so a bad +CMTI cannot loop on CMS 321).
            self.request_sweep()
            return
        await self._persist_then_delete(sms)

    async def _sweep(self) -> None:
        status = await self.storage_status()
        self._emit(StorageChecked(self.name, status))
        if status.full:
            self._emit(StorageFull(self.name, f"{status.used} of {status.total} used"))
        try:
            stored = await self.list_stored()
        except CommandError as exc:
            log.warning("%s: AT+CMGL=4 failed (%s); reading index by index", self.name, exc.final)
            stored = await self._read_each(status.total)
        for sms in stored:
            await self._persist_then_delete(sms)

    async def _read_each(self, total: int) -> list[InboundSms]:
        found: list[InboundSms] = []
        for index in range(1, total + 1):
            try:
                sms = await self.read(index)
            except InvalidIndexError:
                continue
            if sms is not None:
                found.append(sms)
        return found

    async def _persist_then_delete(self, sms: InboundSms) -> None:
        if sms.stat not in _RECEIVED or sms.index is None:
            return  # stored outgoing messages are not ours to take
        if not await self._persisted(sms):
            return
        with contextlib.suppress(InvalidIndexError):  # already gone
            await self.delete(sms.index)
        self._announce(sms, deleted=True)

    async def _persisted(self, sms: InboundSms) -> bool:
        try:
            await self._persist(sms)
        except Exception as exc:
            log.exception("%s: persist failed; message %s stays in storage", self.name, sms.index)
            self._emit(PersistFailed(self.name, sms, repr(exc)))
            return False
        return True

    def _announce(self, sms: InboundSms, *, deleted: bool) -> None:
        self._emit(InboundPersisted(self.name, sms, deleted))
        if isinstance(sms.decoded, StatusReport):
            report = sms.decoded
            self._emit(StatusReportReceived(self.name, report.message_reference, report, sms))

    async def _take_direct(self, urc: Urc) -> None:
        sms = self._decoded(urc.body or "", None, None, None)
        if not await self._persisted(sms):
            return  # unacknowledged: in AT+CSMS=1 mode the network delivers it again
        if self.info is not None and self.info.ack_direct:
            try:
                await self.command("AT+CNMA")
            except CommandError as exc:
                log.warning("%s: AT+CNMA refused: %s", self.name, exc.final)
        self._announce(sms, deleted=False)
