"""A simulated two-way prepaid meter on the simulated SMS network.

It speaks the real frame protocol (`firmware_protocol.frames.Endpoint`, role METER), decodes
tokens with the real STS codec and the meter-side rules (`StsDecoder`), consumes energy by a
household load curve, cuts the supply at zero credit, reports on schedule and on events,
and saves its state before every frame leaves it.

Time is injected: `tick(now)` / `advance(to)` move a meter through simulated time without
sleeping (tests, the demo's fast days); `run()` ticks it in real time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import Enum
from types import TracebackType

from firmware_protocol import frames, sts
from firmware_protocol.frames import (
    MAX_FRAME,
    TEXT_MAX_FRAME,
    Alarm,
    AlarmKind,
    BalanceQuery,
    BalanceReply,
    ConfigAck,
    ConfigStatus,
    Endpoint,
    FrameError,
    LoadProfile,
    Message,
    MeterStatus,
    Ping,
    Pong,
    ReadKind,
    ReadRequest,
    Reason,
    Role,
    SetConfig,
    Telemetry,
    TokenDelivery,
    TokenOutcome,
    TokenResult,
)
from meter_sim.meter import sts_decoder
from meter_sim.meter.consumption import LoadModel
from meter_sim.meter.faults import MeterFaults
from meter_sim.meter.state_store import MeterSnapshot, StateStore, TokenRecord, token_digest
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

FIRMWARE = 0x0102  # 1.2
DEFAULT_INTERVAL_MIN = 1440  # one reading a day (PLN 0066: non-transaction data daily)
DEFAULT_THRESHOLD_KWH = Decimal("5")
_HOUR = timedelta(hours=1)
_PROFILE_HOURS = 48  # hourly registers kept for LOAD_PROFILE
_STEP = timedelta(minutes=15)  # longest stretch `advance` integrates in one tick
_CENT = Decimal("0.01")

# The meter-side decoder knows one more outcome than the frame protocol carries: a token of a
# class or subclass this meter does not take. To the hub that is a token the meter cannot
# use, which the protocol reports as INVALID_CRC.
OUTCOMES: Mapping[sts_decoder.TokenOutcome, TokenOutcome] = {
    sts_decoder.TokenOutcome.ACCEPTED: TokenOutcome.ACCEPTED,
    sts_decoder.TokenOutcome.USED: TokenOutcome.USED,
    sts_decoder.TokenOutcome.OLD: TokenOutcome.OLD,
    sts_decoder.TokenOutcome.INVALID_CRC: TokenOutcome.INVALID_CRC,
    sts_decoder.TokenOutcome.KEY_EXPIRED: TokenOutcome.KEY_EXPIRED,
    sts_decoder.TokenOutcome.OVERFLOW: TokenOutcome.OVERFLOW,
    sts_decoder.TokenOutcome.UNSUPPORTED: TokenOutcome.INVALID_CRC,
}


class Wire(Enum):
    """How unsolicited frames travel; answers use the form of the request."""

    BINARY = "binary"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class MeterIdentity:
    meter_number: str  # 11 digits, also the STS decoder reference number
    msisdn: str  # the meter SIM's number on the network
    hub_msisdn: str  # the only number the meter talks to
    power_va: int
    key_data: sts.KeyData
    vending_key: int
    comms_keys: Mapping[int, bytes]  # key id → 16-byte AES key
    comms_key_id: int
    base_date: sts.BaseDate = sts.BaseDate.Y2014
    #: Key data of revisions this meter has moved away from (after a key change): a token
    #: that opens under one of them is reported KEY_EXPIRED rather than INVALID_CRC.
    expired_key_data: tuple[sts.KeyData, ...] = ()

    def decoder_key(self) -> int:
        return sts.derive_decoder_key(self.vending_key, self.key_data)

    def expired_decoder_keys(self) -> tuple[int, ...]:
        return tuple(sts.derive_decoder_key(self.vending_key, d) for d in self.expired_key_data)


class Fate(Enum):
    SENT = "sent"
    HELD = "held"  # offline: waits in the modem
    LOST = "lost"
    DUPLICATED = "duplicated"
    CORRUPTED = "corrupted"


@dataclass(slots=True)
class SentFrame:
    """One frame the meter produced, and what its faults did to it."""

    message: Message
    message_id: int
    counter: int
    frame: bytes  # as sealed (before any corruption)
    wire: Wire
    sealed_at: datetime  # simulation time
    fates: list[Fate] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An incoming SMS the meter did not act on."""

    at: datetime
    sender: str
    reason: Reason | None  # None: not from the hub


class SimulatedMeter:
    """Attach with `async with SimulatedMeter(...) as meter:` (or `attach()`/`detach()`)."""

    def __init__(
        self,
        identity: MeterIdentity,
        network: SmsNetwork,
        store: StateStore,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        sleep: Sleep = asyncio.sleep,
        seed: int = 0,
        faults: MeterFaults | None = None,
        wire: Wire = Wire.BINARY,
        initial_credit_kwh: Decimal = Decimal(0),
        reporting_interval_min: int = DEFAULT_INTERVAL_MIN,
        low_credit_threshold_kwh: Decimal = DEFAULT_THRESHOLD_KWH,
    ) -> None:
        self.identity = identity
        self.network = network
        self.store = store
        self.faults = faults if faults is not None else MeterFaults()
        self.wire = wire
        self._clock = clock
        self._sleep = sleep
        self._random = random.Random(f"meter:{identity.meter_number}:{seed}")
        self._load = LoadModel(
            identity.power_va, random.Random(f"load:{identity.meter_number}:{seed}")
        )
        self.sent: list[SentFrame] = []
        self.refused: list[Refusal] = []
        self.handled: list[Message] = []  # requests acted on, in order
        self.power_w = 0
        self._held: list[SentFrame] = []
        self._profile: list[tuple[datetime, Decimal]] = []
        self._changed = asyncio.Condition()
        self._run_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

        snapshot = store.load(identity.meter_number)
        self._decoder = sts_decoder.StsDecoder(identity.decoder_key(), identity.base_date)
        self._expired_keys = identity.expired_decoder_keys()
        if snapshot is None:
            self._decoder.credit_kwh = initial_credit_kwh
            self.energy_kwh = Decimal(0)
            self.relay_closed = initial_credit_kwh > 0
            self.mains_on = True
            self.next_message_id = 1
            self.reporting_interval_min = reporting_interval_min
            self.low_credit_threshold_kwh = low_credit_threshold_kwh
            self.clock_offset_s = 0.0
            self.low_credit_alarmed = False
            self.last_tick: datetime | None = None
            self.next_telemetry_at: datetime | None = None
            endpoint_state = frames.EndpointState(identity.comms_key_id, 0, bytes(13))
            self._records: dict[tuple[int, str], TokenRecord] = {}
        else:
            self._decoder.credit_kwh = snapshot.credit_kwh
            self._decoder.tids = list(snapshot.tids)
            self._decoder.tamper = snapshot.tamper
            self.energy_kwh = snapshot.energy_kwh
            self.relay_closed = snapshot.relay_closed
            self.mains_on = snapshot.mains_on
            self.next_message_id = snapshot.next_message_id
            self.reporting_interval_min = snapshot.reporting_interval_min
            self.low_credit_threshold_kwh = snapshot.low_credit_threshold_kwh
            self.clock_offset_s = snapshot.clock_offset_s
            self.low_credit_alarmed = snapshot.low_credit_alarmed
            self.last_tick = snapshot.last_tick
            self.next_telemetry_at = snapshot.next_telemetry_at
            endpoint_state = snapshot.endpoint
            self._records = {
                (r.reference, r.digest): r for r in store.token_records(identity.meter_number)
            }
        self._keys_wrong = self.faults.wrong_key
        self._endpoint = Endpoint.restore(
            endpoint_state,
            role=Role.METER,
            meter_number=identity.meter_number,
            keys=self._effective_keys(),
        )

    # lifetime

    async def __aenter__(self) -> SimulatedMeter:
        self.attach()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
        self.detach()

    def attach(self) -> None:
        self.network.attach(self.identity.msisdn, self)

    def detach(self) -> None:
        self.network.detach(self.identity.msisdn)

    def start(self, tick_s: float = 60.0) -> None:
        """Tick in real time (with the injected clock and sleep) until `stop()`."""
        if self._run_task is None:
            self._run_task = asyncio.get_running_loop().create_task(self.run(tick_s))

    async def stop(self) -> None:
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
            self._run_task = None

    async def run(self, tick_s: float = 60.0) -> None:
        while True:
            await self.tick()
            await self._sleep(tick_s)

    # what the meter shows

    #: Seconds after each interval boundary at which this meter reports (see _next_boundary).
    reporting_phase_s: float = 0.0

    def spread_reports(self, phase_s: float, now: datetime | None = None) -> None:
        """Report `phase_s` seconds after each interval boundary from now on."""
        self.reporting_phase_s = phase_s
        if self.next_telemetry_at is not None:
            self.next_telemetry_at = self._next_boundary(self._now(now))

    @property
    def meter_number(self) -> str:
        return self.identity.meter_number

    @property
    def credit_kwh(self) -> Decimal:
        return self._decoder.credit_kwh

    @property
    def tamper(self) -> bool:
        return self._decoder.tamper

    @property
    def supply_on(self) -> bool:
        return self.relay_closed and self.mains_on

    @property
    def counter(self) -> int:
        """The next invocation counter the meter will seal with."""
        return self._endpoint.next_counter

    @property
    def token_records(self) -> list[TokenRecord]:
        """Every delivery answered (the first answer per reference and token), in order."""
        return list(self._records.values())

    @property
    def credited(self) -> list[TokenRecord]:
        """Tokens that added credit, in the order they were accepted."""
        return [r for r in self._records.values() if r.outcome is TokenOutcome.ACCEPTED]

    def _now(self, now: datetime | None = None) -> datetime:
        """Simulation time as this meter sees it: never before its last tick, so a meter
        advanced ahead of the shared clock does not step back."""
        now = now if now is not None else self._clock()
        return max(now, self.last_tick) if self.last_tick is not None else now

    def meter_time(self, now: datetime | None = None) -> datetime:
        now = self._now(now)
        return (now + timedelta(seconds=self.clock_offset_s)).replace(microsecond=0)

    def status(self) -> MeterStatus:
        status = MeterStatus(0)
        if not self.relay_closed:
            status |= MeterStatus.RELAY_OPEN
        if self.credit_kwh <= 0:
            status |= MeterStatus.NO_CREDIT
        elif self.credit_kwh < self.low_credit_threshold_kwh:
            status |= MeterStatus.LOW_CREDIT
        if self.tamper:
            status |= MeterStatus.TAMPER
        return status

    def sent_messages(self, kind: type[Message] | None = None) -> list[Message]:
        """Messages that left the meter (not lost, not held), oldest first."""
        out: dict[int, Message] = {}
        for s in self.sent:
            if (kind is None or isinstance(s.message, kind)) and (
                Fate.SENT in s.fates or Fate.CORRUPTED in s.fates
            ):
                out.setdefault(s.message_id, s.message)
        return list(out.values())

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds; re-checked whenever the meter handles an SMS."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    # events

    async def tick(self, now: datetime | None = None) -> None:
        """Bring the meter up to `now`: consume, alarm, report what is due, flush held frames."""
        async with self._lock:
            now = self._now(now)
            self._consume(now)
            if self._held and not self.faults.offline(now):
                self._flush_held(now)
            if self.next_telemetry_at is not None and now >= self.next_telemetry_at:
                self._emit(self._telemetry(0, now), now)
                self.next_telemetry_at = self._next_boundary(now)
                self._save()

    async def advance(self, to: datetime) -> None:
        """Tick through simulated time up to `to`, stopping at every due reading and hour
        boundary, and yielding to the event loop between ticks so deliveries can run."""
        if self.last_tick is None:
            await self.tick(min(self._clock(), to))
        while self.last_tick is not None and self.last_tick < to:
            stops = [to, self.last_tick + _STEP, _next_hour(self.last_tick)]
            if self.next_telemetry_at is not None and self.next_telemetry_at > self.last_tick:
                stops.append(self.next_telemetry_at)
            await self.tick(min(stops))
            await asyncio.sleep(0)

    async def mains_fail(self, now: datetime | None = None) -> None:
        """Mains power is lost; the meter reports it on its reserve power."""
        await self._event(now, lambda: setattr(self, "mains_on", False), AlarmKind.POWER_FAIL)

    async def mains_restore(self, now: datetime | None = None) -> None:
        await self._event(now, lambda: setattr(self, "mains_on", True), AlarmKind.POWER_RESTORE)

    async def tamper_event(
        self, kind: AlarmKind = AlarmKind.TAMPER, now: datetime | None = None
    ) -> None:
        """Cover opened, magnet applied...: sets the tamper flag until a clear-tamper token."""

        def set_tamper() -> None:
            self._decoder.tamper = True

        await self._event(now, set_tamper, kind)

    async def _event(
        self, now: datetime | None, change: Callable[[], None], kind: AlarmKind
    ) -> None:
        async with self._lock:
            now = self._now(now)
            self._consume(now)
            change()
            self._alarm(kind, now)
            self._save()

    # the network endpoint

    async def receive_sms(self, sms: NetworkSms) -> bool:
        now = self._now()
        if self.faults.offline(now):
            return False
        try:
            async with self._lock:
                answers = self._receive(sms, now)
            if answers:
                if self.faults.answer_delay_s > 0:
                    await self._sleep(self.faults.answer_delay_s)
                self._transmit(answers, self._now())
        finally:
            async with self._changed:
                self._changed.notify_all()
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None

    def _receive(self, sms: NetworkSms, now: datetime) -> list[SentFrame]:
        if sms.sender != self.identity.hub_msisdn:
            self.refused.append(Refusal(now, sms.sender, None))
            return []
        self._sync_keys()
        wire = Wire.BINARY if sms.data is not None else Wire.TEXT
        raw: bytes | str = sms.data if sms.data is not None else (sms.text or "")
        try:
            received = self._endpoint.receive(raw)
        except FrameError as error:
            self.refused.append(Refusal(now, sms.sender, error.reason))
            return []
        if received is None:
            self._save()  # the replay window moved
            return []
        self._consume(now)
        request_id = received.headers[0].message_id
        message = received.message
        self.handled.append(message)
        record: TokenRecord | None = None
        after: list[Message] = []
        answer: Message
        if isinstance(message, TokenDelivery):
            record, after = self._token(message, now)
            answer = TokenResult(
                message.reference, record.outcome, record.at, _cents(record.credit_kwh),
                _cents(record.added_kwh),
            )  # fmt: skip
        elif isinstance(message, BalanceQuery):
            answer = BalanceReply(
                request_id, self.meter_time(now), _cents(self.credit_kwh), _cents(self.energy_kwh)
            )
        elif isinstance(message, ReadRequest):
            answer = (
                self._load_profile(request_id, message.since)
                if message.kind is ReadKind.LOAD_PROFILE
                else self._telemetry(request_id, now)
            )
        elif isinstance(message, SetConfig):
            answer = self._configure(request_id, message, now)
        elif isinstance(message, Ping):
            answer = Pong(request_id, self.meter_time(now), self._signal(), FIRMWARE)
        else:  # an up message cannot open here (WRONG_DIRECTION), but keep the type checker honest
            return []
        answers = self._seal(answer, wire, now)
        for extra in after:
            answers += self._seal(extra, self.wire, now)
        new = record is not None and (record.reference, record.digest) not in self._records
        self._save(record if new else None)
        if record is not None and new:
            self._records[(record.reference, record.digest)] = record
        return answers

    # token handling

    def _token(self, delivery: TokenDelivery, now: datetime) -> tuple[TokenRecord, list[Message]]:
        prior = self._records.get((delivery.reference, token_digest(delivery.token)))
        if prior is not None:
            # The hub re-sent this delivery (a new counter, the same reference): answer as the
            # first time, so a lost TOKEN_RESULT never turns a credited token into "USED".
            return prior, []
        result = self._decoder.accept(delivery.token)
        outcome = OUTCOMES[result.outcome]
        if result.outcome is sts_decoder.TokenOutcome.INVALID_CRC and self._under_expired_key(
            delivery.token
        ):
            outcome = TokenOutcome.KEY_EXPIRED
        record = TokenRecord.of(
            delivery.reference, delivery.token, outcome, result.tid,
            result.kwh_added, result.credit_after, self.meter_time(now),
        )  # fmt: skip
        after: list[Message] = []
        if outcome is TokenOutcome.ACCEPTED and self.credit_kwh > 0:
            if self.credit_kwh >= self.low_credit_threshold_kwh:
                self.low_credit_alarmed = False
            if not self.relay_closed:
                self.relay_closed = True
                after.append(self._alarm_message(AlarmKind.POWER_RESTORE, now))
        return record, after

    def _under_expired_key(self, token: str) -> bool:
        for key in self._expired_keys:
            try:
                if sts.decode(token, key).crc_ok:
                    return True
            except sts.StsError:
                return False
        return False

    # configuration and readings

    def _configure(self, request_id: int, config: SetConfig, now: datetime) -> ConfigAck:
        status = ConfigStatus.APPLIED
        if config.low_credit_threshold_kwh > sts_decoder.MAX_CREDIT_KWH:
            status = ConfigStatus.REJECTED
        else:
            self.reporting_interval_min = config.reporting_interval_min
            self.low_credit_threshold_kwh = config.low_credit_threshold_kwh
            self.clock_offset_s = (config.clock - now).total_seconds()
            self.low_credit_alarmed = self.credit_kwh < self.low_credit_threshold_kwh
            self.next_telemetry_at = self._next_boundary(now)
        return ConfigAck(
            request_id, status, self.reporting_interval_min,
            _cents(self.low_credit_threshold_kwh), self.meter_time(now),
        )  # fmt: skip

    def _telemetry(self, request_id: int, now: datetime) -> Telemetry:
        voltage = Decimal(0)
        if self.mains_on:
            voltage = Decimal(round(self._random.gauss(220.0, 3.0), 1)).quantize(Decimal("0.1"))
        return Telemetry(
            request_id, self.meter_time(now), _cents(self.energy_kwh), _cents(self.credit_kwh),
            voltage, self.power_w, self.status(), self._signal(),
        )  # fmt: skip

    def _load_profile(self, request_id: int, since: datetime) -> LoadProfile:
        points = [(t, e) for t, e in self._profile if t >= since][:_PROFILE_HOURS]
        if not points:
            return LoadProfile(request_id, self.meter_time(), 60, ())
        start = (points[0][0] + timedelta(seconds=self.clock_offset_s)).replace(microsecond=0)
        return LoadProfile(request_id, start, 60, tuple(_cents(e) for _, e in points))

    def _signal(self) -> int:
        return self._random.randint(12, 25)

    def _next_boundary(self, now: datetime) -> datetime:
        interval = timedelta(minutes=self.reporting_interval_min)
        # Real fleets spread their reports over the interval (a phase per meter) so that a
        # million meters do not all call at the same second; phase 0 reports on the boundary.
        phase = timedelta(seconds=self.reporting_phase_s) % interval
        origin = now.replace(hour=0, minute=0, second=0, microsecond=0) + phase
        if origin > now:
            origin -= interval
        return origin + ((now - origin) // interval + 1) * interval

    # consumption and the relay

    def _consume(self, now: datetime) -> None:
        last = self.last_tick
        if last is None:
            self.last_tick = now
            if self.next_telemetry_at is None:
                self.next_telemetry_at = self._next_boundary(now)
            return
        if now <= last:
            return
        drift = self.faults.clock_drift_s_per_day * (now - last).total_seconds() / 86400
        self.clock_offset_s += drift
        used = Decimal(0)
        if self.supply_on:
            used = min(self._load.energy_kwh(last, now), self.credit_kwh)
            self._decoder.credit_kwh -= used
            self.energy_kwh += used
        hours = (now - last).total_seconds() / 3600
        self.power_w = int(float(used) * 1000 / hours) if hours and self.supply_on else 0
        self.last_tick = now
        boundary = _next_hour(last)
        if boundary <= now:
            self._profile.append((boundary, self.energy_kwh))
            del self._profile[:-_PROFILE_HOURS]
        low = 0 < self.credit_kwh < self.low_credit_threshold_kwh
        if low and not self.low_credit_alarmed:
            self.low_credit_alarmed = True
            self._alarm(AlarmKind.LOW_CREDIT, now)
        if self.credit_kwh <= 0 and self.relay_closed:
            self.relay_closed = False
            self.low_credit_alarmed = True
            self._alarm(AlarmKind.NO_CREDIT, now)
        # No save here: consumption since the last saved frame is simply re-integrated
        # after a restart (from the saved last tick); only what a frame carries must be on
        # disk before it leaves.

    def _alarm_message(self, kind: AlarmKind, now: datetime) -> Alarm:
        return Alarm(self.meter_time(now), kind, _cents(self.credit_kwh), self.status())

    def _alarm(self, kind: AlarmKind, now: datetime) -> None:
        self._emit(self._alarm_message(kind, now), now)

    # sending

    def _emit(self, message: Message, now: datetime) -> None:
        """Seal an unsolicited message, save, then send (or hold while offline)."""
        sent = self._seal(message, self.wire, now)
        self._save()
        self._transmit(sent, now)

    def _seal(self, message: Message, wire: Wire, now: datetime) -> list[SentFrame]:
        self._sync_keys()
        message_id = self.next_message_id
        self.next_message_id = message_id % 0xFFFFFFFF + 1
        counter = self._endpoint.next_counter
        limit = TEXT_MAX_FRAME if wire is Wire.TEXT else MAX_FRAME
        sealed = self._endpoint.seal(message, message_id=message_id, max_frame=limit)
        sent = [
            SentFrame(message, message_id, counter + i, frame, wire, now)
            for i, frame in enumerate(sealed)
        ]
        self.sent.extend(sent)
        return sent

    def _transmit(self, frames_out: list[SentFrame], now: datetime) -> None:
        for sent in frames_out:
            if self.faults.offline(now):
                sent.fates.append(Fate.HELD)
                self._held.append(sent)
                continue
            if self._random.random() < self.faults.loss_rate:
                sent.fates.append(Fate.LOST)
                continue
            frame = sent.frame
            if self._random.random() < self.faults.corrupt_rate:
                frame = _flip(frame, self._random)
                sent.fates.append(Fate.CORRUPTED)
            else:
                sent.fates.append(Fate.SENT)
            copies = 2 if self._random.random() < self.faults.duplicate_rate else 1
            if copies == 2:
                sent.fates.append(Fate.DUPLICATED)
            for _ in range(copies):
                self._submit(frame, sent.wire)

    def _submit(self, frame: bytes, wire: Wire) -> None:
        if wire is Wire.TEXT:
            self.network.submit(
                self.identity.msisdn, self.identity.hub_msisdn, text=frames.to_text(frame)
            )
        else:
            self.network.submit(self.identity.msisdn, self.identity.hub_msisdn, data=frame)

    def _flush_held(self, now: datetime) -> None:
        held, self._held = self._held, []
        self._transmit(held, now)

    # keys and state

    def _effective_keys(self) -> dict[int, bytes]:
        keys = dict(self.identity.comms_keys)
        if self.faults.wrong_key:
            keys = {kid: bytes(b ^ 0x5A for b in key) for kid, key in keys.items()}
        return keys

    def _sync_keys(self) -> None:
        if self.faults.wrong_key != self._keys_wrong:
            self._keys_wrong = self.faults.wrong_key
            self._endpoint = Endpoint.restore(
                self._endpoint.state(),
                role=Role.METER,
                meter_number=self.meter_number,
                keys=self._effective_keys(),
            )

    def snapshot(self) -> MeterSnapshot:
        return MeterSnapshot(
            meter_number=self.meter_number,
            credit_kwh=self.credit_kwh,
            energy_kwh=self.energy_kwh,
            tids=tuple(self._decoder.tids),
            tamper=self.tamper,
            relay_closed=self.relay_closed,
            mains_on=self.mains_on,
            endpoint=self._endpoint.state(),
            next_message_id=self.next_message_id,
            reporting_interval_min=self.reporting_interval_min,
            low_credit_threshold_kwh=self.low_credit_threshold_kwh,
            clock_offset_s=self.clock_offset_s,
            low_credit_alarmed=self.low_credit_alarmed,
            last_tick=self.last_tick,
            next_telemetry_at=self.next_telemetry_at,
        )

    def _save(self, record: TokenRecord | None = None) -> None:
        self.store.save(self.snapshot(), record)


def _cents(value: Decimal) -> Decimal:
    return max(value, Decimal(0)).quantize(_CENT, rounding=ROUND_DOWN)


def _next_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0) + _HOUR


def _flip(frame: bytes, rng: random.Random) -> bytes:
    position = rng.randrange(len(frame))
    out = bytearray(frame)
    out[position] ^= 1 << rng.randrange(8)
    return bytes(out)
