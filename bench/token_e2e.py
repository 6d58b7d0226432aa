"""Token end to end: purchase SMS in → P2APST simulator → token frame out → meter answer →
receipt out, through the real hub, modem pool (emulated modems, `fast` profile) and P2APST
client, at a steady offered rate; the hub's own share of each purchase's time."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import logging
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.profiling import sampled
from bench.report import Row, Section
from bench.rig import percentile
from gateway.at import ModemConfig
from gateway.inbound_journal import InboundJournal, JournalledPool
from gateway.msisdn import MsisdnError, normalise
from gateway.pool import ModemPool, PoolConfig
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from gateway.transport import InboundSms, OutboundSms, Transport, TransportEvent
from meter_sim.fleet import Fleet, FleetMember, build_members, registry_csv, sim_meters
from meter_sim.meter.state_store import StateStore
from meter_sim.modem_emulator import ModemEmulator, TimingProfile
from meter_sim.network import NetworkProfile, SmsNetwork
from meter_sim.phones.inbox import NoticeKind, read_notice
from meter_sim.phones.phone import SimulatedPhone
from operator_data.crypto import MasterKey
from operator_data.hub import Hub, HubPurchaseJournal, HubReportOutbox
from operator_data.registry import Registry
from operator_data.registry.csv_io import import_csv
from operator_data.settings import HubSettings, PinPolicy, Settings
from operator_data.store import Direction, Store, TransactionState, schema
from p2apst_adapter.client import ClientSettings, P2apstClient
from p2apst_adapter.dialect import Deframer, IsoError, Mti, decode, decode_bit48
from p2apst_adapter.simulator import P2apstSimulator
from sqlalchemy import select

NAME = "token_e2e"
TITLE = "Token end to end (purchase SMS → P2APST → token frame → meter → receipt)"
#: Purchases offered at the target rate (0.8 s of it); the 50/s run offers half. The hub
#: sustains only a few purchases/s here, so a longer offer only lengthens the backlog (and
#: the latencies, linearly) while the run's time grows past two minutes.
DEFAULT_SIZE = 160
SMOKE_SIZE = 6
TARGET_RATE = 200.0  # purchases/s offered
LOW_RATE = 50.0
#: Well under what the hub sustains: its share with (almost) no queueing, for reference.
IDLE_RATE = 2.0
IDLE_COUNT = 10
TARGET_P99_MS = 50.0
SHORT_CODE = "87000"
FIRST_HUB_LINE = 6281100000001
MODEMS = 4
PIN = "1234"
AMOUNT = 50_000
WARM_UP = 3
#: How long a run may take to finish its purchases once all are offered (then it reports
#: what finished; the sweeper is off, so a purchase that went wrong would never finish).
DRAIN_S = 120.0

METHOD = f"""\
Everything in one process and event loop: the real `Hub` on SQLite (a file database with
the Store's defaults), the real `ModemPool` behind `JournalledPool` + `SpooledGateway` (as
`pintar demo` wires them) driving {MODEMS} emulated modems on ptys with the `fast` timing
profile (no send delay) on a simulated SMS network with no delivery delay (the short code
{SHORT_CODE} routes to the modems), a `P2apstClient` with the hub's own purchase journal
against a `P2apstSimulator` over TCP on 127.0.0.1, and `meter_sim` meters and phones
(`Fleet`). The registry (customers, meters with comms keys, SIMs, phones) is imported
from the fleet's CSV; every phone has the same PIN, hashed once with the hub's scrypt
parameters (setup, not timed). Open loop: purchases are offered at a steady rate
(`BELI 50000 <PIN>`), each from a distinct phone for a distinct meter, so nothing is
refused as a duplicate; a run ends when every phone has its receipt.

The hub's own share of a purchase is measured at the hub's two boundaries, with wall-clock
stamps: a pass-through `Transport` around the gateway records when each event is handed to
the hub and when the hub hands each SMS to `send()`; a pass-through TCP tap between the
P2APST client and the simulator records when each 2100/2200 leaves and its answer returns.
Share = (customer SMS handed to the hub → 2200 on the wire, minus the 2100/2110 inquiry's
round trip) + (2210 back → token frame handed to `send()`) + (meter's TOKEN_RESULT handed
to the hub → receipt handed to `send()`). Excluded: the simulator's and the TCP time
between request and answer, and the modem/network time between `send()` and the next
inbound SMS. Included (it is the hub's): PIN verification (scrypt), the P2APST client's
journal writes, every database wait, and time queued in the hub. End to end = the phone's
purchase SMS submitted → its receipt in the phone's inbox. The same figure from the store's
state stamps alone (message RECEIVED/SUBMITTED, transaction SUBMITTED/TOKEN_ISSUED/
APPLIED) is given in a note: it misses the time an event waits inside the hub before its
batch stamps RECEIVED, and the store has no stamp for the inquiry, so it is not the
measure judged. The simulator, meters, phones, emulators and pool share the hub's event
loop and two cores: their CPU time (a few ms per purchase) shows up as hub time."""

NOTES = [
    "The target (p99 of the hub's share < 50 ms at 200 purchases/s) is missed by orders of "
    "magnitude: on these 2-core machines the hub finishes only about 2-8 purchases/s "
    "whatever is offered (see the achieved figures above), so at 50/s and 200/s the "
    "backlog grows for the whole offer and the latencies "
    "are queueing (they grow with the run's length; only their order of magnitude means "
    "anything). Even unqueued (2/s) the hub's share is hundreds of ms per purchase, "
    "mostly the customer SMS → 2200 segment (PIN check, duplicate check, transaction, reply, "
    "inquiry, journal). Time outside the hub (P2APST round trips, modems, network, meters) "
    "is ~0.05 s p50 unqueued and ~0.4 s under load (the same loop and cores as the hub). "
    "Figures vary a lot between runs with the machine's other load (the 2/s share p50 was "
    "0.25 s in one run and 0.9 s in the next).",
    "Profile (cProfile over a whole run: 2/s × 10, 50/s × 50, 200/s × 100; 2026-11-22, load "
    "average 3-7 from other work, before the two changes in the next note): of ~93 s wall, "
    "the event loop sat idle in epoll ~38 s (waiting for aiosqlite's worker thread and the "
    "scrypt threads) and ~11 s went to `SimpleQueue.put_nowait`, i.e. handing each call to "
    "aiosqlite's thread and fighting it for the GIL; most of the remaining ~44 s is "
    "SQLAlchemy Core building and executing statements. By workflow (cProfile's coroutine "
    "figures overlap, so only the order is reliable): applying inbound batches "
    "(`process_events`: customer SMS, meter TOKEN_RESULTs, and the SendResult + "
    "DeliveryReport events of the three SMS each purchase sends), then customer commands "
    "(`_command`: PIN, duplicate check, transaction, reply), then the purchase driver "
    "(`drive`/`_paid`/`start_delivery`), state transitions, the outbox dispatcher, and the "
    "P2APST client's journal and report outbox in the hub's store.",
    "Per purchase the hub's store now sees ~130 SQL statements in ~20 committed transactions "
    "at smoke size (45 SELECT, 32 INSERT, 26 UPDATE, 3 DELETE, plus BEGINs and savepoints; "
    "counted with a cursor hook), down from ~176 (73 SELECT): a state move with a single "
    "possible predecessor no longer reads the state first, row locks are sent only to "
    "PostgreSQL, a charge is one INSERT ... ON CONFLICT DO NOTHING, and a logged message is "
    "not read back after its INSERT (nor wrapped in a savepoint on SQLite). SQLite statements "
    "now cost one trip to aiosqlite's thread instead of four (`store/sqlite_driver.py`): "
    "~230 trips per purchase in this whole world instead of ~600. Measured A/B (driver, "
    "state moves, locks and charge; before the message-log change) on 100 "
    "purchases offered at 200/s, alternating runs (2026-11-22, idle machine): 13.8-17.9 s "
    "against 18.1-20.8 s, process CPU 17.7-20.6 s against 21.3-23.7 s — about 15-25 % less. "
    "The same benchmark run alternately on the code before and after (2026-11-22, two "
    "pairs): achieved 5.9 and 3.8 purchases/s before against 6.8 and 6.0 after at 200/s "
    "offered, 5.9 and 5.0 against 7.2 and 6.6 at 50/s. "
    "The hub stays bound by its event-loop thread (~100 ms of CPU per purchase, most of it "
    "SQLAlchemy Core building statements and handling results). Reaching 200/s needs far "
    "fewer, bigger transactions (set-based application of send results and reports, no "
    "read-backs of rows "
    "just written, the purchase's state moves grouped) and statements prepared once.",
    "PIN verification alone rules 200/s out on two cores: scrypt with n = 2^14, r = 8 "
    "takes ~45-90 ms of CPU per purchase here (88 ms measured under load average 6), so "
    "two cores can verify at most ~25-45 PINs/s even if the hub did nothing else. The "
    "target needs more cores for the hash, a cheaper hash, or a decision that a purchase "
    "SMS may be checked more cheaply (e.g. a verified-PIN cache per phone).",
]


# -- recording taps --------------------------------------------------------------------------


class TimedTransport:
    """The gateway, passed through: when each event reached the hub and each SMS left it."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.handed_in: dict[str, float] = {}  # event id -> wall time
        self.handed_out: dict[str, float] = {}  # message id -> first send() call

    async def send(self, sms: OutboundSms) -> bool:
        self.handed_out.setdefault(sms.message_id, time.time())
        return await self.inner.send(sms)

    async def events(self) -> AsyncIterator[TransportEvent]:
        async for event in self.inner.events():
            if isinstance(event, InboundSms):
                self.handed_in.setdefault(event.event_id, time.time())
            yield event

    async def ack(self, event_id: str) -> None:
        await self.inner.ack(event_id)


@dataclass(slots=True)
class Exchange:
    sent: float
    answered: float


class P2apstTap:
    """A TCP pass-through in front of the simulator: when each inquiry and purchase went
    out and came back, by meter number (each purchase here has its own meter)."""

    WATCHED = frozenset({Mti.INQUIRY_REQUEST.value, Mti.PURCHASE_REQUEST.value})

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.inquiries: dict[str, Exchange] = {}
        self.purchases: dict[str, Exchange] = {}
        self._open: dict[str, tuple[str, str, float]] = {}  # stan -> (mti, meter, sent)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> P2apstTap:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        for task in (
            asyncio.create_task(self._pump(reader, up_writer, outbound=True)),
            asyncio.create_task(self._pump(up_reader, writer, outbound=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, outbound: bool
    ) -> None:
        deframer = Deframer()
        try:
            while data := await reader.read(65536):
                now = time.time()
                writer.write(data)  # forward first: the tap must not hold traffic up
                for raw in deframer.feed(data):
                    self._seen(raw, now, outbound)
        except (ConnectionError, IsoError):
            pass
        finally:
            writer.close()

    def _seen(self, raw: bytes, at: float, outbound: bool) -> None:
        message = decode(raw)
        stan = message.stan or ""
        if outbound and message.mti in self.WATCHED:
            meter = str(decode_bit48(message.mti, message.require(48))["meter_number"])
            self._open[stan] = (message.mti, meter, at)
        elif not outbound and stan in self._open:
            mti, meter, sent = self._open.pop(stan)
            book = self.inquiries if mti == Mti.INQUIRY_REQUEST.value else self.purchases
            book.setdefault(meter, Exchange(sent, at))


# -- the world -------------------------------------------------------------------------------


@dataclass(slots=True)
class World:
    store: Store
    hub: Hub
    transport: TimedTransport
    tap: P2apstTap
    fleet: Fleet
    members: list[FleetMember]
    breaches: list[object] = field(default_factory=list)


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        service={"short_code": SHORT_CODE},  # type: ignore[arg-type]
        pin=PinPolicy(length=len(PIN)),
        hub=HubSettings(sweep_interval_s=3600),
    )


async def _provision(store: Store, registry: Registry, members: Sequence[FleetMember]) -> None:
    """The fleet's CSV through the registry's import, then each phone's PIN through the
    registry (a keyed hash bound to the phone: one hash cannot be copied to another)."""
    await import_csv(registry, io.StringIO(registry_csv(members)))
    for member in members:
        await registry.set_pin(member.phone_msisdn, PIN, actor="bench")


@asynccontextmanager
async def build_world(workdir: Path, meters: int) -> AsyncIterator[World]:
    settings = _settings(workdir)
    members = [
        dataclasses.replace(m, pin=PIN)
        for m in build_members(meters, seed=7, hub_msisdn=SHORT_CODE)
    ]
    master = MasterKey(secrets.token_bytes(32))
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(Store(f"sqlite+aiosqlite:///{workdir}/hub.db"))
        await store.migrate()
        registry = Registry(store, master_key=master, pin_policy=settings.pin)
        await _provision(store, registry, members)

        network = await stack.enter_async_context(SmsNetwork(NetworkProfile(), seed=7))
        emulators = [
            await stack.enter_async_context(
                ModemEmulator(
                    network, f"+{FIRST_HUB_LINE + n}", timing=TimingProfile.FAST, sim_slots=50
                )
            )
            for n in range(MODEMS)
        ]
        network.alias(SHORT_CODE, [e.msisdn for e in emulators], present_as_alias=True)
        spool = await stack.enter_async_context(Spool(workdir / "gateway-spool.db"))
        journal = await stack.enter_async_context(InboundJournal(workdir / "gateway-in.db"))
        pool = await stack.enter_async_context(
            ModemPool(
                [
                    # The driver's first probe ("ESC AT") always times out on the emulator:
                    # a short timeout keeps start-up quick (not measured).
                    ModemConfig(port=e.device_path, name=f"modem{n + 1}", probe_timeout=0.3)
                    for n, e in enumerate(emulators)
                ],
                persist=journal.persist,
                journal=spool,  # store-then-send, as `pintar gateway` runs its modems
                config=PoolConfig(min_interval=0.0, retry_delay=1.0),
            )
        )
        gateway = await stack.enter_async_context(
            SpooledGateway("gw1", JournalledPool(pool, journal), spool)
        )
        transport = TimedTransport(gateway)

        simulator = await stack.enter_async_context(P2apstSimulator(sim_meters(members), seed=7))
        tap = await stack.enter_async_context(P2apstTap(simulator.port))
        outbox = HubReportOutbox(store, master)
        client = await stack.enter_async_context(
            P2apstClient(
                "127.0.0.1",
                tap.port,
                journal=HubPurchaseJournal(store, master),
                outbox=outbox,
                settings=ClientSettings(echo_interval=3600.0, response_timeout=60.0),
            )
        )
        await client.wait_connected()
        hub = await stack.enter_async_context(
            Hub(settings, store, registry, transport, client, report_outbox=outbox,
                run_sweeper=False)
        )  # fmt: skip
        meter_state = stack.enter_context(StateStore(workdir / "meters.db"))
        fleet = await stack.enter_async_context(
            Fleet(members, network, meter_state, clock=_utc_now, short_code=SHORT_CODE, seed=7)
        )
        world = World(store, hub, transport, tap, fleet, members)
        hub.on_sla_breach(world.breaches.append)
        yield world


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- a run -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    rate: float
    offered: int
    offer_seconds: float
    finished: int = 0
    seconds: float = 0.0
    hub_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    store_ms: list[float] = field(default_factory=list)
    outside_ms: list[float] = field(default_factory=list)
    segments_ms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def achieved(self) -> float:
        return self.finished / self.seconds if self.seconds > 0 else 0.0


def _has_receipt(phone: SimulatedPhone) -> bool:
    return any(read_notice(sms.text).kind is NoticeKind.RECEIPT for sms in phone.inbox)


def _receipt_at(phone: SimulatedPhone) -> float | None:
    for sms in phone.inbox:
        if read_notice(sms.text).kind is NoticeKind.RECEIPT:
            return sms.received_at.timestamp()
    return None


async def _offer(phones: Sequence[SimulatedPhone], rate: float) -> float:
    """Open loop: purchase n goes out at start + n / rate however the hub is doing."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n, phone in enumerate(phones):
        delay = started + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        phone.buy(AMOUNT)
    return loop.time() - started


async def _wait_receipts(phones: Sequence[SimulatedPhone], seconds: float) -> None:
    async def every() -> None:
        for phone in phones:
            await phone.wait_for(lambda phone=phone: _has_receipt(phone))  # type: ignore[misc]

    try:
        async with asyncio.timeout(seconds):
            await every()
    except TimeoutError:
        pass


async def _run(world: World, phones: Sequence[SimulatedPhone], rate: float) -> Outcome:
    offer_seconds = await _offer(phones, rate)
    await _wait_receipts(phones, DRAIN_S)
    outcome = Outcome(rate, len(phones), offer_seconds)
    await _measure(world, phones, outcome)
    return outcome


def _msisdn(raw: str) -> str:
    try:
        return normalise(raw)
    except MsisdnError:
        return raw


async def _measure(world: World, phones: Sequence[SimulatedPhone], outcome: Outcome) -> None:
    """Joins the taps' stamps to the purchases through the store's rows."""
    by_phone = {p.msisdn: p for p in phones}
    msgs, txs, states = schema.messages, schema.transactions, schema.message_states
    tstates = schema.transaction_states
    async with world.store.read() as conn:
        tx_rows = [
            r
            for r in await conn.execute(
                select(txs.c.id, txs.c.phone_msisdn, txs.c.meter_number, txs.c.request_message_id)
            )
            if r.phone_msisdn in by_phone
        ]
        tx_ids = [r.id for r in tx_rows]
        request_ids = [r.request_message_id for r in tx_rows]
        meters = [r.meter_number for r in tx_rows]
        keys = {
            r.id: str(r.idempotency_key)
            for r in await conn.execute(
                select(msgs.c.id, msgs.c.idempotency_key).where(msgs.c.id.in_(request_ids))
            )
        }
        out = {
            (r.transaction_id, r.kind): r.id
            for r in await conn.execute(
                select(msgs.c.id, msgs.c.transaction_id, msgs.c.kind).where(
                    msgs.c.transaction_id.in_(tx_ids), msgs.c.direction == Direction.OUT.value
                )
            )
        }
        answers = {
            r.meter_number: str(r.idempotency_key)
            for r in await conn.execute(
                select(msgs.c.meter_number, msgs.c.idempotency_key).where(
                    msgs.c.meter_number.in_(meters),
                    msgs.c.direction == Direction.IN.value,
                    msgs.c.kind == "TOKEN_RESULT",
                )
            )
        }
        msg_ids = [*request_ids, *out.values()]
        msg_stamps = {
            (r.message_id, r.state): r.at.timestamp()
            for r in await conn.execute(
                select(states.c.message_id, states.c.state, states.c.at).where(
                    states.c.message_id.in_(msg_ids)
                )
            )
        }
        tx_stamps: dict[tuple[str, str], float] = {}
        for stamp in await conn.execute(
            select(tstates.c.transaction_id, tstates.c.state, tstates.c.at)
            .where(tstates.c.transaction_id.in_(tx_ids))
            .order_by(tstates.c.id)
        ):
            tx_stamps.setdefault((stamp.transaction_id, stamp.state), stamp.at.timestamp())
    handed_in, handed_out = world.transport.handed_in, world.transport.handed_out
    tap = world.tap
    seg: dict[str, list[float]] = {
        "in → 2200": [],
        "2210 → token frame": [],
        "meter answer → receipt": [],
    }
    firsts: list[float] = []
    lasts: list[float] = []
    for r in tx_rows:
        phone = by_phone[r.phone_msisdn]
        done = _receipt_at(phone)
        token_id = out.get((r.id, "TOKEN_DELIVERY"))
        receipt_id = out.get((r.id, "receipt"))
        answer_key = answers.get(r.meter_number)
        inquiry = tap.inquiries.get(r.meter_number)
        purchase = tap.purchases.get(r.meter_number)
        request_key = keys.get(r.request_message_id, "")
        if (
            done is None
            or token_id is None
            or receipt_id is None
            or answer_key is None
            or inquiry is None
            or purchase is None
        ):
            continue
        customer_in = handed_in[request_key.removeprefix("sms:")]
        answer_in = handed_in[answer_key.removeprefix("sms:")]
        a = purchase.sent - customer_in - (inquiry.answered - inquiry.sent)
        b = handed_out[token_id] - purchase.answered
        c = handed_out[receipt_id] - answer_in
        for name, value in zip(seg, (a, b, c), strict=True):
            seg[name].append(value * 1000)
        outcome.hub_ms.append((a + b + c) * 1000)
        sent = phone.sent[0].sent_at.timestamp()
        outcome.total_ms.append((done - sent) * 1000)
        outcome.outside_ms.append(outcome.total_ms[-1] - outcome.hub_ms[-1])
        firsts.append(sent)
        lasts.append(done)
        stamped = (
            tx_stamps[(r.id, TransactionState.SUBMITTED.value)]
            - msg_stamps[(r.request_message_id, "received")]
            - (inquiry.answered - inquiry.sent)
            + msg_stamps[(token_id, "submitted")]
            - tx_stamps[(r.id, TransactionState.TOKEN_ISSUED.value)]
            + msg_stamps[(receipt_id, "submitted")]
            - tx_stamps[(r.id, TransactionState.APPLIED.value)]
        )
        outcome.store_ms.append(stamped * 1000)
    outcome.segments_ms = seg
    outcome.finished = len(outcome.hub_ms)
    outcome.seconds = max(lasts) - min(firsts) if firsts else 0.0


# -- the section -----------------------------------------------------------------------------


def _ms(values: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
    return p50, p95, p99


def _rows(outcome: Outcome, judged: bool) -> list[Row]:
    label = f"{outcome.rate:.0f} purchases/s offered"
    hub = _ms(outcome.hub_ms)
    total = _ms(outcome.total_ms)
    target = f"p99 < {TARGET_P99_MS:.0f} ms at {TARGET_RATE:.0f}/s"
    passed = hub[2] < TARGET_P99_MS and outcome.achieved >= 0.95 * TARGET_RATE if judged else None
    detail = (
        f"{outcome.offered} offered in {outcome.offer_seconds:.2f} s, {outcome.finished} "
        f"finished in {outcome.seconds:.2f} s; hub share p50 {hub[0]:.0f} / p95 {hub[1]:.0f} / "
        f"p99 {hub[2]:.0f} ms; end to end p50 {total[0]:.0f} / p95 {total[1]:.0f} / "
        f"p99 {total[2]:.0f} ms"
    )
    return [
        Row(f"{label}: achieved", outcome.achieved, "purchases/s", "", None, detail),
        Row(f"{label}: hub share p50", hub[0], "ms"),
        Row(f"{label}: hub share p95", hub[1], "ms"),
        Row(
            f"{label}: hub share p99",
            hub[2],
            "ms",
            target if judged else "",
            passed,
        ),
        Row(f"{label}: end to end p50", total[0], "ms"),
        Row(f"{label}: end to end p95", total[1], "ms"),
        Row(f"{label}: end to end p99", total[2], "ms"),
    ]


def _breakdown(outcome: Outcome) -> str:
    parts = ", ".join(
        f"{name} p50 {_ms(values)[0]:.0f} / p99 {_ms(values)[2]:.0f} ms"
        for name, values in outcome.segments_ms.items()
    )
    store = _ms(outcome.store_ms)
    outside = _ms(outcome.outside_ms)
    return (
        f"{outcome.rate:.0f}/s: hub share by segment: {parts}. Outside the hub (P2APST round "
        f"trips, modems, network, phone and meter): p50 {outside[0]:.0f} / p99 "
        f"{outside[2]:.0f} ms. The same hub share from the store's state stamps alone: "
        f"p50 {store[0]:.0f} / p95 {store[1]:.0f} / p99 {store[2]:.0f} ms."
    )


async def measure(size: int, workdir: Path) -> Section:
    section = Section(NAME, TITLE, size, method=METHOD, notes=list(NOTES))
    plan = (
        (IDLE_RATE, min(IDLE_COUNT, max(3, size // 2))),
        (LOW_RATE, max(3, size // 2)),
        (TARGET_RATE, size),
    )
    profiled = max(3, size // 4)
    extra = profiled if size >= 20 else 0  # not at smoke sizes
    async with build_world(workdir, WARM_UP + sum(c for _, c in plan) + extra) as world:
        phones = world.fleet.phones
        await _run(world, phones[:WARM_UP], LOW_RATE)
        loads: list[float] = []
        outcomes: list[Outcome] = []
        first = WARM_UP
        for rate, count in plan:
            loads.append(os.getloadavg()[0])
            outcomes.append(await _run(world, phones[first : first + count], rate))
            first += count
        breaches = len(world.breaches)
        if extra:
            # The target is missed: the same load once more under pyinstrument (not timed).
            with sampled() as profile:
                await _run(world, phones[first : first + extra], TARGET_RATE)
            section.notes.append(
                f"Profile of {extra} more purchases offered at {TARGET_RATE:.0f}/s (this run, "
                f"not one of the measured ones): {profile.summary(8)}"
            )
    for outcome, load in zip(outcomes, loads, strict=True):
        section.rows += _rows(outcome, judged=outcome.rate == TARGET_RATE)
        section.notes.append(_breakdown(outcome) + f" Load average {load:.1f} when it started.")
        if outcome.finished < outcome.offered:
            section.notes.append(
                f"{outcome.rate:.0f}/s: only {outcome.finished} of {outcome.offered} purchases "
                f"finished within {DRAIN_S:.0f} s of the last offer."
            )
    section.notes.append(
        f"The hub raised {breaches} SLA breach events during the runs (token to network "
        "over its 10 s target, once queues had built up)."
    )
    return section


def run(size: int = DEFAULT_SIZE) -> Section:
    started = time.perf_counter()
    # Every overloaded purchase logs its SLA breach; they are counted, not printed.
    sla_log = logging.getLogger("operator_data.hub.sla")
    level = sla_log.level
    sla_log.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-token-") as workdir:
            section = asyncio.run(measure(size, Path(workdir)))
    finally:
        sla_log.setLevel(level)
    section.seconds = time.perf_counter() - started
    return section
