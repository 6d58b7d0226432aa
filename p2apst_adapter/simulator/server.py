"""An asyncio TCP server that speaks the P2APST dialect, issues real STS tokens and
misbehaves on request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Self

from firmware_protocol import sts
from p2apst_adapter import messages
from p2apst_adapter.dialect import (
    INQUIRY_REQUEST,
    INQUIRY_RESPONSE,
    PRIVATE_DATA_2,
    PURCHASE_REQUEST,
    PURCHASE_RESPONSE,
    TOKEN_REPORT,
    Deframer,
    Framing,
    IsoError,
    IsoMessage,
    Mti,
    NetworkCode,
    ProductCode,
    ResponseCode,
    decode,
    encode,
    frame,
)
from p2apst_adapter.model import WIB
from p2apst_adapter.simulator.faults import (
    NO_FAULT,
    Fault,
    FaultKind,
    FaultPicker,
    FaultPlan,
    FaultScript,
)
from p2apst_adapter.simulator.ledger import Ledger, LedgerState
from p2apst_adapter.simulator.meters import MeterRegistry, SimMeter
from p2apst_adapter.simulator.pricing import breakdown

log = logging.getLogger(__name__)

RC = ResponseCode
_RECEIPT_TEXT = "Informasi Hubungi Call Center 123 Atau Hub PLN Terdekat"
#: Requests an ERROR fault may decline; advices and reports always get their true answer.
_DECLINABLE = frozenset({Mti.INQUIRY_REQUEST.value, Mti.PURCHASE_REQUEST.value})


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    framing: Framing = Framing.LENGTH_PREFIX
    admin_fee: Decimal = Decimal(2500)
    min_amount: Decimal = Decimal(20000)
    max_amount: Decimal = Decimal(10_000_000)
    require_sign_on: bool = True
    distribution_code: str = "53"
    service_unit: str = "53111"
    service_unit_phone: str = "123"


def _now() -> datetime:
    return datetime.now(WIB)


def _references_random(seed: int | None, starts: int) -> random.Random:
    """The source of references, receipts and tokens' random blocks. Books reopened after
    a restart must not be handed the references of the first run again (each would be
    answered 0088, already paid), so a reopened ledger gets a sequence of its own, still
    reproducible from the seed."""
    if seed is None or starts <= 1:
        return random.Random(seed)
    return random.Random(f"{seed}/restart {starts}")


class _Peer:
    """One client connection: its sign-on state, the answers it is owed, its writer."""

    def __init__(self, writer: asyncio.StreamWriter, framing: Framing) -> None:
        self.writer = writer
        self.framing = framing
        self.signed_on = False
        self.tasks: set[asyncio.Task[None]] = set()
        self._held: list[tuple[IsoMessage, asyncio.TimerHandle]] = []

    def send(self, message: IsoMessage) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(encode(message), self.framing))

    def hold(self, message: IsoMessage, seconds: float) -> None:
        handle = asyncio.get_running_loop().call_later(seconds, self._release, message)
        self._held.append((message, handle))

    def _release(self, message: IsoMessage) -> None:
        for index, (held, handle) in enumerate(self._held):
            if held is message:
                handle.cancel()
                del self._held[index]
                self.send(message)
                return

    def release_held(self) -> None:
        for message, _ in list(self._held):
            self._release(message)

    def abort(self) -> None:
        for _, handle in self._held:
            handle.cancel()
        self._held.clear()
        self.writer.transport.abort()


class P2apstSimulator:
    """P2APST's side of the link. Use as `async with P2apstSimulator(meters) as sim:`;
    `sim.port` is the bound port (0 = ephemeral)."""

    def __init__(
        self,
        meters: Iterable[SimMeter],
        *,
        ledger: Ledger | None = None,
        faults: FaultPlan | None = None,
        settings: SimulatorSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = _now,
        seed: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.meters = MeterRegistry(meters)
        self._tls = tls  # `tls.server_context`: TLS, a client certificate required
        self.ledger = ledger if ledger is not None else Ledger()
        self.settings = settings or SimulatorSettings()
        self.script = FaultScript()
        self.connections_accepted = 0
        #: With TLS: the subject common name of each client certificate accepted.
        self.client_names: list[str] = []
        self._picker = FaultPicker(faults) if faults is not None else None
        self._host = host
        self._port = port
        self._clock = clock
        self._random = _references_random(
            seed if seed is not None or faults is None else faults.seed, self.ledger.starts
        )
        self._server: asyncio.Server | None = None
        self._peers: set[_Peer] = set()
        self._received: Counter[str] = Counter()
        self._changed = asyncio.Condition()

    # --- lifetime ------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, ssl=self._tls
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for peer in list(self._peers):
            peer.abort()
            for task in peer.tasks:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    # --- observation, for tests ---------------------------------------------------------

    def received(self, mti: str) -> int:
        """How many messages of type `mti` have arrived (decoded), over all connections."""
        return self._received[mti]

    async def wait_received(self, mti: str, count: int = 1) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._received[mti] >= count)

    def drop_connections(self) -> None:
        """Cuts every client connection, as a network failure would."""
        for peer in list(self._peers):
            peer.abort()

    # --- the connection loop ------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _Peer(writer, self.settings.framing)
        self._peers.add(peer)
        self.connections_accepted += 1
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is not None:  # the handshake checked the certificate already
            subject = dict(pair[0] for pair in ssl_object.getpeercert().get("subject", ()))
            self.client_names.append(str(subject.get("commonName", "")))
        deframer = Deframer(self.settings.framing)
        try:
            while data := await reader.read(4096):
                for raw in deframer.feed(data):
                    # A late answer goes out just before whatever comes next, so a test can
                    # make "answer after the client gave up" happen without a timer.
                    peer.release_held()
                    try:
                        message = decode(raw)
                    except IsoError as error:
                        log.warning("simulator: undecodable message: %s", error)
                        continue
                    await self._note(message.mti)
                    if message.mti == Mti.NETWORK_REQUEST:
                        peer.send(self._network(peer, message))
                    else:
                        task = asyncio.create_task(self._handle(peer, message))
                        peer.tasks.add(task)
                        task.add_done_callback(peer.tasks.discard)
        except (IsoError, ConnectionError) as error:
            log.info("simulator: connection ends: %s", error)
        finally:
            self._peers.discard(peer)
            peer.abort()

    async def _note(self, mti: str) -> None:
        async with self._changed:
            self._received[mti] += 1
            self._changed.notify_all()

    async def _handle(self, peer: _Peer, message: IsoMessage) -> None:
        fault = self.script.take(message.mti)
        if fault is None:
            fault = (
                self._picker.pick(can_error=message.mti in _DECLINABLE)
                if self._picker is not None
                else NO_FAULT
            )
        if fault.kind is FaultKind.LOST:
            log.info("simulator: %s %s lost on the way", message.mti, message.stan)
            return
        if self.settings.require_sign_on and not peer.signed_on:
            answer = messages.response(message, RC.SIGN_ON_NEEDED)
        elif fault.kind is FaultKind.ERROR and message.mti in _DECLINABLE:
            answer = self._decline(message, fault.code)
        else:
            answer = self._process(message)
        await self._deliver(peer, answer, fault)

    async def _deliver(self, peer: _Peer, answer: IsoMessage, fault: Fault) -> None:
        match fault.kind:
            case FaultKind.NONE | FaultKind.ERROR:
                peer.send(answer)
            case FaultKind.LATENCY:
                await asyncio.sleep(fault.seconds)
                peer.send(answer)
            case FaultKind.NO_ANSWER:
                log.info("simulator: not answering %s %s", answer.mti, answer.stan)
            case FaultKind.LATE:
                peer.hold(answer, fault.seconds)
            case FaultKind.DROP:
                peer.abort()

    # --- message handling ---------------------------------------------------------------

    def _network(self, peer: _Peer, message: IsoMessage) -> IsoMessage:
        match message.get(70):
            case NetworkCode.SIGN_ON:
                peer.signed_on = True
            case NetworkCode.SIGN_OFF:
                peer.signed_on = False
            case NetworkCode.ECHO:
                pass
            case _:
                return messages.response(message, RC.INVALID_MESSAGE)
        return messages.response(message, RC.SUCCESS)

    def _process(self, message: IsoMessage) -> IsoMessage:
        try:
            match message.mti:
                case Mti.INQUIRY_REQUEST:
                    return self._inquiry(message)
                case Mti.PURCHASE_REQUEST:
                    return self._purchase(message)
                case Mti.ADVICE | Mti.ADVICE_REPEAT:
                    return self._advice(message)
                case Mti.REPORT_ADVICE | Mti.REPORT_ADVICE_REPEAT:
                    return self._report(message)
        except IsoError as error:
            log.info("simulator: invalid %s: %s", message.mti, error)
            return messages.response(message, RC.INVALID_MESSAGE)
        with contextlib.suppress(ValueError):
            return messages.response(message, RC.INVALID_MESSAGE)
        # a type that has no response MTI at all: answer as a network error
        return IsoMessage(Mti.NETWORK_RESPONSE, {11: message.stan or "0" * 12, 39: "0030"})

    def _find(self, values: dict[str, object]) -> tuple[SimMeter | None, str]:
        if values["flag"] == "1":
            return self.meters.by_customer(str(values["customer_id"])), RC.UNKNOWN_CUSTOMER
        return self.meters.by_meter(str(values["meter_number"])), RC.UNKNOWN_METER

    def _bit62(self) -> str:
        return PRIVATE_DATA_2.encode(
            {
                "distribution_code": self.settings.distribution_code,
                "service_unit": self.settings.service_unit,
                "service_unit_phone": self.settings.service_unit_phone,
                "max_kwh": 0,
                "total_repeat": 0,
                "unsold_amounts": [],
            }
        )

    def _inquiry(self, message: IsoMessage) -> IsoMessage:
        if message.get(2) != ProductCode.PREPAID:
            return messages.response(message, RC.UNREGISTERED_PRODUCT)
        values = INQUIRY_REQUEST.decode(message.require(48))
        meter, unknown = self._find(values)
        if meter is None:
            return messages.response(message, unknown)
        if meter.blocked:
            return messages.response(message, RC.CUSTOMER_SUSPENDED)
        bit48 = INQUIRY_RESPONSE.encode(
            {
                **values,
                "meter_number": meter.meter_number,
                "customer_id": meter.customer_id,
                "pln_reference": uuid.UUID(int=self._random.getrandbits(128)).hex.upper(),
                "switcher_reference": uuid.UUID(int=self._random.getrandbits(128)).hex.upper(),
                "customer_name": meter.customer_name[:25],
                "tariff": meter.tariff,
                "power_va": meter.power_va,
                "admin_fee": self.settings.admin_fee,
            }
        )
        return messages.response(message, RC.SUCCESS, f48=bit48, f62=self._bit62())

    def _decline(self, message: IsoMessage, code: str) -> IsoMessage:
        if message.mti == Mti.PURCHASE_REQUEST:
            with contextlib.suppress(IsoError):
                values = PURCHASE_REQUEST.decode(message.require(48))
                reference = str(values["switcher_reference"])
                if reference and self.ledger.claim(
                    reference, str(values["meter_number"]), "0", self._clock()
                ):
                    self.ledger.finish(reference, LedgerState.DECLINED, code, message.fields[48])
        return messages.response(message, code)

    def _purchase(self, message: IsoMessage) -> IsoMessage:
        if message.get(2) != ProductCode.PREPAID:
            return messages.response(message, RC.UNREGISTERED_PRODUCT)
        values = PURCHASE_REQUEST.decode(message.require(48))
        amount = messages.amount_of(message)
        meter, unknown = self._find(values)
        reference = str(values["switcher_reference"])
        settings = self.settings
        if meter is None:
            return messages.response(message, unknown)
        if meter.blocked:
            return messages.response(message, RC.CUSTOMER_SUSPENDED)
        if not reference:
            return messages.response(message, RC.INVALID_SWITCHER_REFERENCE)
        if amount < settings.min_amount:
            return messages.response(message, RC.BELOW_MINIMUM)
        if amount > settings.max_amount:
            return messages.response(message, RC.ABOVE_MAXIMUM)
        if values["admin_fee"] != settings.admin_fee:
            return messages.response(message, RC.INVALID_ADMIN_CHARGE)
        now = self._clock()
        if not self.ledger.claim(reference, meter.meter_number, str(amount), now):
            # Paid (or declined) before: the result is only given out by an advice.
            return messages.response(message, RC.ALREADY_PAID)
        parts = breakdown(amount, settings.admin_fee, meter.tariff, meter.power_va)
        try:
            issued = self.ledger.next_issue_minute(meter.meter_number, now.astimezone(WIB))
            fields = sts.credit(0, self._random.randrange(16), issued, parts.kwh, meter.base_date)
            token = sts.encode(fields, meter.decoder_key())
        except sts.StsError as error:
            log.info("simulator: no token for %s: %s", reference, error)
            self.ledger.finish(
                reference, LedgerState.DECLINED, RC.KWH_OVER_MAXIMUM, message.fields[48]
            )
            return messages.response(message, RC.KWH_OVER_MAXIMUM)
        bit48 = PURCHASE_RESPONSE.encode(
            {
                **values,
                "meter_number": meter.meter_number,
                "customer_id": meter.customer_id,
                "pln_reference": str(values["pln_reference"])
                or uuid.UUID(int=self._random.getrandbits(128)).hex.upper(),
                "vending_receipt": f"{self._random.getrandbits(32):08X}",
                "customer_name": meter.customer_name[:25],
                "tariff": meter.tariff,
                "power_va": meter.power_va,
                "admin_fee": parts.admin_fee,
                "stamp_duty": parts.stamp_duty,
                "vat": parts.vat,
                "ppj": parts.ppj,
                "instalment": parts.instalment,
                "power_purchase": parts.power_purchase,
                "kwh": parts.kwh,
                "token": token,
            }
        )
        bit62 = self._bit62()
        self.ledger.finish(reference, LedgerState.PAID, RC.SUCCESS, bit48, bit62, token)
        return self._paid_answer(message, bit48, bit62)

    def _paid_answer(self, message: IsoMessage, bit48: str, bit62: str | None) -> IsoMessage:
        return messages.response(
            message,
            RC.SUCCESS,
            f15=self._clock().astimezone(WIB).strftime("%Y%m%d"),
            f48=bit48,
            f62=bit62,
            f63=_RECEIPT_TEXT,
        )

    def _advice(self, message: IsoMessage) -> IsoMessage:
        values = PURCHASE_REQUEST.decode(message.require(48))
        entry = self.ledger.get(str(values["switcher_reference"]))
        if entry is None:
            # The 2200 never arrived: nothing was paid, the sender may safely give up.
            return messages.response(message, RC.NO_PAYMENT)
        if entry.state is LedgerState.PROCESSING:
            return messages.response(message, RC.TIMEOUT)
        if entry.state is LedgerState.DECLINED or entry.bit48 is None:
            return messages.response(message, entry.response_code or RC.OTHER_ERROR)
        return self._paid_answer(message, entry.bit48, entry.bit62)

    def _report(self, message: IsoMessage) -> IsoMessage:
        bit48 = message.require(48)
        values = TOKEN_REPORT.decode(bit48)
        self.ledger.record_report(str(values["report_id"]), bit48, self._clock())
        return messages.response(message, RC.SUCCESS)
