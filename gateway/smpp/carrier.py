"""An SMPP 3.4 transceiver link as a gateway `Carrier` (behind `SpooledGateway`).

- One TCP connection, bound with bind_transceiver; enquire_link keeps it alive and proves it
  is; a request without a response within `response_timeout` drops the connection, and the
  link reconnects and rebinds with doubling back-off.
- Windowing: at most `window` submit_sm are outstanding at once.
- ESME_RTHROTTLED and ESME_RMSGQFUL pause every sender (doubling back-off) and the same part is
  submitted again; any other error status fails the message.
- A message a lost connection interrupts goes back in line and continues with the part the
  SMSC did not confirm: nothing the spool handed over is lost.
- deliver_sm is answered only after the event it became is in the spool (the SMSC redelivers
  what is not answered). Delivery receipts are matched to the hub's message_id through the
  SMSC message ids from submit_sm_resp, kept in the `ReceiptBook`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from gateway.msisdn import MsisdnError, normalise
from gateway.smpp.message import (
    DELIVERIES,
    ESM_DELIVERY_RECEIPT,
    ESM_TYPE_MASK,
    LongMessages,
    Part,
    decode_content,
    parse_receipt,
    split,
    user_data,
)
from gateway.smpp.pdu import RETRY_LATER, Command, Pdu, SmppError, Status, UnknownCommand
from gateway.smpp.reassembly import Assembled, GroupKey, PartStore
from gateway.smpp.receipts import ReceiptBook
from gateway.smpp.stream import read_pdu, write_pdu
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    ModemStateChanged,
    ModemStatus,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)

log = logging.getLogger(__name__)

INTERFACE_VERSION = 0x34
#: Events handed to the spool at most in one batch (one commit).
EVENT_BATCH = 256
TON_INTERNATIONAL = 1
NPI_ISDN = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SmppSettings:
    host: str
    port: int
    system_id: str
    password: str = ""
    system_type: str = ""
    name: str = "smpp"  # the link's label in events (their `modem` field)
    source_addr: str = ""  # our number or short code; empty lets the SMSC choose
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    window: int = 10  # outstanding submit_sm at most
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    throttle_backoff: float = 1.0  # first pause after ESME_RTHROTTLED / ESME_RMSGQFUL
    throttle_backoff_max: float = 30.0
    reconnect_backoff: float = 0.5
    reconnect_backoff_max: float = 60.0
    long_messages: LongMessages = LongMessages.UDH
    receipt_retention: timedelta = timedelta(days=7)  # SMSC ids older than this are dropped
    reassembly_timeout: timedelta = timedelta(minutes=10)  # multipart MO: give up waiting


class LinkDown(Exception):
    """The connection is unusable; the link reconnects."""


@dataclass(slots=True)
class _Job:
    sms: OutboundSms
    parts: list[Part]
    next_part: int = 0
    attempts: int = 0
    finished: bool = False


@dataclass(slots=True)
class _Session:
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[Pdu]] = field(default_factory=dict)
    # Jobs taken off the queue by this session, by id(): a task cancelled before it ever
    # ran cannot put its job back itself, so the session does it when it ends.
    jobs: dict[int, _Job] = field(default_factory=dict)


class SmppCarrier:
    """`async with SmppCarrier(settings, book) as link:` connects and keeps connecting."""

    def __init__(
        self,
        settings: SmppSettings,
        book: ReceiptBook,
        *,
        parts: PartStore | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """`parts` keeps multipart MO messages until whole; without it, each part is given
        out on its own (complete=False)."""
        if settings.window < 1:
            raise ValueError("the window must be at least 1")
        self.settings = settings
        self._book = book
        self._parts = parts
        self._clock = clock
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._events: asyncio.Queue[tuple[TransportEvent, asyncio.Future[None] | None]] = (
            asyncio.Queue()
        )
        self._sequence = itertools.count(1)
        self._references = itertools.count(int(time.time()) & 0xFF)
        self._resume_at = 0.0  # monotonic time before which nobody submits (throttled)
        self._throttle_delay = settings.throttle_backoff
        # SMSC ids answered but not yet in the book: a receipt can overtake the book write.
        self._unrecorded: dict[str, asyncio.Event] = {}
        self.bound = asyncio.Event()
        self.binds = 0  # successful binds so far (a reconnect makes it 2, ...)
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=f"smpp-{self.settings.name}")
        if self._parts is not None:
            self._expiry = asyncio.create_task(self._expire(self._parts))
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A cancellation can be lost while the link reconnects (one landing as a refused
        # connect completes), which once left this waiting forever: the loop also stops at
        # `_closing`, and the task is cancelled until it has ended.
        self._closing = True
        for task in (self._task, self._expiry):
            while task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)

    # -- Carrier --------------------------------------------------------------------------

    async def submit(self, sms: OutboundSms) -> None:
        reference = next(self._references) & 0xFF
        self._jobs.put_nowait(_Job(sms, split(sms, reference, self.settings.long_messages)))

    async def carrier_events(self) -> AsyncIterator[TransportEvent]:
        while True:
            event, stored = await self._events.get()
            yield event
            # The consumer asks for the next event only once it has stored this one.
            if stored is not None and not stored.done():
                stored.set_result(None)

    async def carrier_event_batches(self) -> AsyncIterator[list[TransportEvent]]:
        """`carrier_events`, every ready event at once (gateway.spooled.BatchingCarrier): the
        spool stores them in one commit, and their deliver_sm are answered after it."""
        while True:
            ready = [await self._events.get()]
            while len(ready) < EVENT_BATCH and not self._events.empty():
                ready.append(self._events.get_nowait())
            yield [event for event, _ in ready]
            for _, stored in ready:
                if stored is not None and not stored.done():
                    stored.set_result(None)

    # -- connection -----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.settings.reconnect_backoff
        while not self._closing:
            try:
                await self._connection()
            except (OSError, asyncio.IncompleteReadError, SmppError, LinkDown) as error:
                log.warning(
                    "%s: link down (%s); reconnecting in %.1f s",
                    self.settings.name,
                    error or type(error).__name__,
                    delay,
                )
            except Exception:
                # A bug must not end the link for good: log it and connect afresh.
                log.exception("%s: link failed; reconnecting in %.1f s", self.settings.name, delay)
            if self.bound.is_set():
                self.bound.clear()
                self._state(ModemStatus.OUT_OF_SERVICE, "connection lost")
                delay = self.settings.reconnect_backoff
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_backoff_max)

    async def _connection(self) -> None:
        reader, writer = await asyncio.open_connection(self.settings.host, self.settings.port)
        session = _Session(writer)
        bound = False
        try:
            await self._bind(reader, session)
            bound = True
            await self._book.prune(self._clock(), self.settings.receipt_retention)
            self.binds += 1
            self.bound.set()
            self._state(ModemStatus.READY, f"bound to {self.settings.host}:{self.settings.port}")
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._read(reader, session, group))
                    group.create_task(self._keep_alive(session))
                    group.create_task(self._dispatch(session, group))
            except* (OSError, asyncio.IncompleteReadError, SmppError, LinkDown) as errors:
                raise errors.exceptions[0] from None
        except asyncio.CancelledError:
            if bound:  # the carrier is closing: say so to the SMSC
                await self._unbind(reader, session)
            raise
        finally:
            for job in session.jobs.values():
                if not job.finished:  # the next session continues it
                    self._jobs.put_nowait(job)
            for future in session.pending.values():
                if not future.done():
                    future.set_exception(LinkDown("connection closed"))
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _bind(self, reader: asyncio.StreamReader, session: _Session) -> None:
        s = self.settings
        sequence = self._next_sequence()
        await write_pdu(
            session.writer,
            Pdu(
                Command.BIND_TRANSCEIVER,
                sequence,
                params={
                    "system_id": s.system_id,
                    "password": s.password,
                    "system_type": s.system_type,
                    "interface_version": INTERFACE_VERSION,
                },
            ),
        )
        async with asyncio.timeout(s.response_timeout):
            response = await read_pdu(reader)
        if response.command is not Command.BIND_TRANSCEIVER_RESP or response.sequence != sequence:
            raise LinkDown(f"expected bind_transceiver_resp, got {response.command.name}")
        if response.status != Status.ESME_ROK:
            raise LinkDown(f"bind refused: {_status_name(response.status)}")

    def _next_sequence(self) -> int:
        return (next(self._sequence) - 1) % 0x7FFFFFFF + 1

    async def _request(self, session: _Session, pdu: Pdu) -> Pdu:
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        session.pending[pdu.sequence] = future
        try:
            await write_pdu(session.writer, pdu)
            async with asyncio.timeout(self.settings.response_timeout):
                return await future
        except TimeoutError:
            raise LinkDown(f"no response to {pdu.command.name} #{pdu.sequence}") from None
        finally:
            session.pending.pop(pdu.sequence, None)

    async def _keep_alive(self, session: _Session) -> None:
        while True:
            await asyncio.sleep(self.settings.enquire_link_interval)
            await self._request(session, Pdu(Command.ENQUIRE_LINK, self._next_sequence()))

    async def _read(
        self, reader: asyncio.StreamReader, session: _Session, group: asyncio.TaskGroup
    ) -> None:
        while True:
            try:
                pdu = await read_pdu(reader)
            except UnknownCommand as unknown:
                await self._unknown(session, unknown)
                continue
            if pdu.command.is_response:
                if pdu.command is Command.SUBMIT_SM_RESP and pdu.status == Status.ESME_ROK:
                    self._unrecorded.setdefault(pdu.text("message_id"), asyncio.Event())
                future = session.pending.get(pdu.sequence)
                if future is not None and not future.done():
                    future.set_result(pdu)
                elif pdu.command is not Command.GENERIC_NACK:
                    log.warning(
                        "%s: unexpected %s #%d", self.settings.name, pdu.command.name, pdu.sequence
                    )
            elif pdu.command in DELIVERIES:  # deliver_sm, or data_sm (SMPP 3.4 §4.7)
                group.create_task(self._deliver(session, pdu))
            elif pdu.command is Command.ENQUIRE_LINK:
                await write_pdu(session.writer, Pdu(Command.ENQUIRE_LINK_RESP, pdu.sequence))
            elif pdu.command is Command.UNBIND:
                await write_pdu(session.writer, Pdu(Command.UNBIND_RESP, pdu.sequence))
                raise LinkDown("the SMSC unbound")
            else:
                await write_pdu(
                    session.writer,
                    Pdu(Command.GENERIC_NACK, pdu.sequence, Status.ESME_RINVCMDID),
                )

    async def _unknown(self, session: _Session, unknown: UnknownCommand) -> None:
        """A command this link does not speak: a request gets generic_nack ESME_RINVCMDID
        (SMPP 3.4 §4.3), a response is dropped; either way the link stays up."""
        if unknown.is_response:
            log.warning(
                "%s: ignored an unknown response 0x%08x #%d",
                self.settings.name,
                unknown.command_id,
                unknown.sequence,
            )
            return
        log.warning(
            "%s: answered an unknown command 0x%08x #%d with generic_nack",
            self.settings.name,
            unknown.command_id,
            unknown.sequence,
        )
        await write_pdu(
            session.writer, Pdu(Command.GENERIC_NACK, unknown.sequence, Status.ESME_RINVCMDID)
        )

    async def _unbind(self, reader: asyncio.StreamReader, session: _Session) -> None:
        """Closing on purpose: unbind and wait (briefly) for unbind_resp, so the SMSC logs an
        orderly end rather than a dropped connection. Best effort: a link that cannot say
        goodbye closes anyway."""
        sequence = self._next_sequence()
        with contextlib.suppress(Exception):
            await write_pdu(session.writer, Pdu(Command.UNBIND, sequence))
            async with asyncio.timeout(min(self.settings.response_timeout, 2.0)):
                while True:
                    try:
                        pdu = await read_pdu(reader)
                    except UnknownCommand:
                        continue
                    if pdu.command is Command.UNBIND_RESP:
                        return

    # -- sending --------------------------------------------------------------------------

    async def _dispatch(self, session: _Session, group: asyncio.TaskGroup) -> None:
        # One slot per job in flight; a job has at most one part outstanding at a time,
        # so at most `window` submit_sm are outstanding.
        window = asyncio.Semaphore(self.settings.window)
        while True:
            await window.acquire()
            job = await self._jobs.get()
            session.jobs[id(job)] = job
            group.create_task(self._send(session, job, window))

    async def _send(self, session: _Session, job: _Job, window: asyncio.Semaphore) -> None:
        try:
            while job.next_part < len(job.parts):
                if (wait := self._resume_at - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                job.attempts += 1
                part = job.parts[job.next_part]
                response = await self._request(session, self._submit_pdu(job.sms, part))
                if response.status == Status.ESME_ROK:
                    self._throttle_delay = self.settings.throttle_backoff
                    # The SMSC has this part whatever happens to the connection now: count it
                    # before anything can be cancelled, and let the book write finish.
                    index = job.next_part
                    job.next_part += 1
                    await asyncio.shield(self._record(response.text("message_id"), job, index))
                elif response.status in RETRY_LATER:
                    self._throttled(response.status)
                else:
                    job.finished = True
                    self._result(job, SendStatus.FAILED, _status_name(response.status))
                    return
            job.finished = True
            self._result(job, SendStatus.SENT)
        finally:
            window.release()
            if job.finished:
                del session.jobs[id(job)]

    async def _record(self, smsc_id: str, job: _Job, part: int) -> None:
        try:
            await self._book.record(smsc_id, job.sms.message_id, job.sms.to, part, self._clock())
        finally:
            if (recorded := self._unrecorded.pop(smsc_id, None)) is not None:
                recorded.set()

    def _throttled(self, status: int) -> None:
        delay = self._throttle_delay
        self._resume_at = max(self._resume_at, time.monotonic() + delay)
        self._throttle_delay = min(delay * 2, self.settings.throttle_backoff_max)
        log.info("%s: %s; pausing submits %.2f s", self.settings.name, _status_name(status), delay)

    def _submit_pdu(self, sms: OutboundSms, part: Part) -> Pdu:
        s = self.settings
        return Pdu(
            Command.SUBMIT_SM,
            self._next_sequence(),
            params={
                "source_addr_ton": s.source_addr_ton,
                "source_addr_npi": s.source_addr_npi,
                "source_addr": s.source_addr,
                "dest_addr_ton": TON_INTERNATIONAL,
                "dest_addr_npi": NPI_ISDN,
                "destination_addr": sms.to.removeprefix("+"),
                "esm_class": part.esm_class,
                "registered_delivery": 1 if sms.status_report else 0,
                "data_coding": part.data_coding,
                "short_message": part.short_message,
            },
            tlvs=part.tlvs,
        )

    def _result(self, job: _Job, status: SendStatus, error: str | None = None) -> None:
        self._events.put_nowait(
            (
                SendResult(
                    event_id=f"{self.settings.name}-result-{uuid.uuid4().hex}",
                    message_id=job.sms.message_id,
                    status=status,
                    at=self._clock(),
                    recipient=job.sms.to,
                    modem=self.settings.name,
                    attempts=job.attempts,
                    error=error,
                ),
                None,
            )
        )

    def _state(self, status: ModemStatus, detail: str) -> None:
        event = ModemStateChanged(
            event_id=f"{self.settings.name}-state-{uuid.uuid4().hex}",
            modem=self.settings.name,
            status=status,
            at=self._clock(),
            detail=detail,
        )
        self._events.put_nowait((event, None))

    # -- receiving ------------------------------------------------------------------------

    async def _stored(self, event: TransportEvent) -> None:
        """Hands `event` over and returns once the consumer has stored it."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._events.put_nowait((event, stored))
        await stored

    async def _deliver(self, session: _Session, pdu: Pdu) -> None:
        group: GroupKey | None = None
        if pdu.number("esm_class") & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT:
            event: TransportEvent | None = await self._receipt(pdu)
        else:
            event, group = await self._inbound(pdu)
        if event is not None:
            await self._stored(event)
        if group is not None and self._parts is not None:
            await self._parts.forget(group)
        answer = DELIVERIES[pdu.command]
        await write_pdu(session.writer, Pdu(answer, pdu.sequence, params={"message_id": ""}))

    async def _receipt(self, pdu: Pdu) -> DeliveryReport | None:
        body = user_data(pdu).decode("latin-1")
        try:
            receipt = parse_receipt(body, dict(pdu.tlvs))
        except SmppError as error:
            log.error("%s: unreadable delivery receipt dropped: %s", self.settings.name, error)
            return None
        if (recording := self._unrecorded.get(receipt.message_id)) is not None:
            await recording.wait()
        found = await self._book.lookup(receipt.message_id)
        message_id, recipient, part = found if found else (None, _msisdn(pdu), 0)
        return DeliveryReport(
            # stable per receipt: the SMSC re-sending an unanswered receipt is deduplicated
            event_id=f"{self.settings.name}-receipt-{receipt.message_id}-{receipt.state.value}",
            message_id=message_id,
            recipient=recipient,
            message_reference=part,
            status=receipt.tp_status,
            discharge_time=receipt.done,
            at=self._clock(),
            modem=self.settings.name,
        )

    async def _inbound(self, pdu: Pdu) -> tuple[InboundSms | None, GroupKey | None]:
        """The event of a deliver_sm or data_sm; for one part of several, None until the
        last one (then also the group to forget once the event is stored)."""
        body = user_data(pdu)
        try:
            content = decode_content(pdu.number("data_coding"), pdu.number("esm_class"), body)
            text, data, concat = content.text, content.data, content.concat
        except SmppError as error:
            # Keep what the SMSC gave us rather than refuse it (it would be lost or looped).
            log.warning(
                "%s: %s kept as raw data: %s",
                self.settings.name,
                pdu.command.name.lower(),
                error,
            )
            text, data, concat = None, body, None
        sender = _msisdn(pdu)
        if concat is not None and concat[1] > 1 and self._parts is not None:
            reference, total, seq = concat
            key = (sender, reference, total)
            whole = await self._parts.add(key, seq, text, data, self._clock())
            return (None, None) if whole is None else (self._assembled(whole), key)
        event = InboundSms(
            event_id=f"{self.settings.name}-mo-{uuid.uuid4().hex}",
            sender=sender,
            received_at=self._clock(),
            text=text,
            data=data,
            modem=self.settings.name,
            complete=concat is None or concat[1] <= 1,
        )
        return event, None

    def _assembled(self, whole: Assembled) -> InboundSms:
        return InboundSms(
            event_id=f"{self.settings.name}-mo-{whole.event_id_suffix}",
            sender=whole.key[0],
            received_at=whole.received_at,
            text=whole.text,
            data=whole.data,
            modem=self.settings.name,
            complete=whole.complete,
        )

    async def _expire(self, parts: PartStore) -> None:
        timeout = self.settings.reassembly_timeout
        while True:
            for whole in await parts.expired(self._clock(), timeout):
                log.warning(
                    "%s: multipart message from %s incomplete after %s",
                    self.settings.name,
                    whole.key[0],
                    timeout,
                )
                await self._stored(self._assembled(whole))
                await parts.forget(whole.key)
            await asyncio.sleep(min(timeout.total_seconds() / 4, 60.0))


def _msisdn(pdu: Pdu) -> str:
    address = pdu.text("source_addr")
    if pdu.number("source_addr_ton") == TON_INTERNATIONAL and address.isdigit():
        address = "+" + address
    try:
        return normalise(address, mobile_only=False)
    except MsisdnError:
        return address  # a short code or an alphanumeric sender


def _status_name(status: int) -> str:
    try:
        return f"{Status(status).name} (0x{status:02x})"
    except ValueError:
        return f"command_status 0x{status:08x}"
