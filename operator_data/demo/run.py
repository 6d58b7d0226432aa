"""Wires the whole system together in one process and drives customer traffic through it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import random
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import uvicorn
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import FastAPI
from sqlalchemy import select

from gateway.at import ModemConfig
from gateway.housekeeping import Housekeeper
from gateway.inbound_journal import InboundJournal, JournalledPool
from gateway.pool import ModemPool, PoolConfig
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from meter_sim.fleet import Fleet, FleetMember, build_members, registry_csv, sim_meters
from meter_sim.meter.state_store import StateStore
from meter_sim.modem_emulator import Faults, ModemEmulator, TimingProfile
from meter_sim.network import NetworkProfile, SmsNetwork
from meter_sim.phones.behaviour import Behaviour
from operator_data.ap2t_source import StoreAp2tHistory
from operator_data.api.app import create_app
from operator_data.cli.store_options import login_command
from operator_data.crypto.master_key import MasterKey
from operator_data.demo.interrupt import Interrupts
from operator_data.demo.live import (
    CountingCarrier,
    format_figures,
    format_live,
    format_phase,
    live_figures,
)
from operator_data.demo.options import DemoOptions, Profile
from operator_data.demo.summary import Counters, collect_summary
from operator_data.hub import Hub, HubPurchaseJournal, HubReportOutbox
from operator_data.hub.actions import HubActions
from operator_data.hub.push_api import router as push_router
from operator_data.hub.sla import SlaMonitor
from operator_data.registry import Registry
from operator_data.registry.csv_io import import_csv
from operator_data.settings import (
    HubSettings,
    PinPolicy,
    SecuritySettings,
    Settings,
    SlaTargets,
    WebSettings,
)
from operator_data.store import Store, schema
from operator_data.store.file_modes import make_private
from p2apst_adapter.ap2t.receiver import Ap2tReceiver
from p2apst_adapter.client import ClientSettings, P2apstClient
from p2apst_adapter.simulator import FaultPlan, Ledger, P2apstSimulator

log = logging.getLogger("pintar.demo")

SHORT_CODE = "87000"
FIRST_HUB_LINE = 6281100000001
DENOMINATIONS = (20_000, 50_000, 100_000, 200_000)


@dataclass
class World:
    options: DemoOptions
    settings: Settings
    store: Store
    registry: Registry
    members: list[FleetMember]
    network: SmsNetwork
    emulators: list[ModemEmulator]
    pool: ModemPool
    simulator: P2apstSimulator
    hub: Hub
    fleet: Fleet
    ap2t: Ap2tReceiver
    ap2t_url: str
    web_url: str | None
    counters: Counters
    sms: CountingCarrier
    housekeeper: Housekeeper | None = None
    #: Purchases the simulator's books held as paid when this run began (a resumed run).
    paid_before: int = 0
    credited_before: int = 0  # tokens the meters had credited when this run began


def _master_key_file(data_dir: Path) -> Path:
    path = data_dir / "master.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    return path


class DataDirError(RuntimeError):
    """The data directory cannot be resumed faithfully; the message says why."""


async def _has_transactions(store: Store) -> bool:
    t = schema.transactions
    async with store.read() as conn:  # LIMIT 1: stops at the first row it finds
        return (await conn.execute(select(t.c.id).limit(1))).first() is not None


def ledger_key(master: MasterKey) -> bytes:
    """The key sealing the P2APST simulator's books: derived from the demo's master key, so
    the data directory holds one secret, and a value of the hub's never opens there."""
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"pintar demo p2apst ledger")
    return hkdf.derive(master.key)


def _quiet(_: str) -> None:
    pass


def demo_settings(options: DemoOptions) -> Settings:
    options.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # customer data inside
    fast = options.profile is Profile.FAST
    return Settings(
        data_dir=options.data_dir,
        security=SecuritySettings(master_key_file=_master_key_file(options.data_dir)),
        service={"short_code": SHORT_CODE},  # type: ignore[arg-type]
        pin=PinPolicy(length=4),  # the simulated customers' PINs are four digits
        # A fast run lasts minutes: a meter that has not answered in 20 s gets the token
        # again (then the helpdesk), so faults play out within the run.
        sla=SlaTargets() if not fast else SlaTargets(meter_answer_s=20.0),
        hub=HubSettings(
            denominations_idr=list(DENOMINATIONS),
            sweep_interval_s=1.0 if fast else 5.0,
        ),
        web=WebSettings(docs="public"),  # the demo shows its API documentation to anyone
    )


async def _provision(registry: Registry, members: list[FleetMember]) -> None:
    """Imports the fleet into the registry once (a data dir reused keeps it) and sets PINs."""
    counts = await registry.counts()
    if counts.get("meters", 0) == 0:
        await import_csv(registry, io.StringIO(registry_csv(members)))
    missing = [m for m in members if not (await registry.get_phone(m.phone_msisdn)).pin_set]
    for member in missing:  # a keyed hash: microseconds each, one small transaction
        await registry.set_pin(member.phone_msisdn, member.pin, actor="demo")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the signals alone. uvicorn's own takes Ctrl-C from the
    demo, shuts the AP2T receiver and the web app down at once (the summary then failed to
    deliver the day's batch) and raises the signal again when it is done; the demo owns
    Ctrl-C and closes its servers itself."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@asynccontextmanager
async def _serve(app: FastAPI, port: int) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        with suppress(Exception):
            await asyncio.wait_for(task, 10)
        sock.close()


@asynccontextmanager
async def build_world(
    options: DemoOptions, say: Callable[[str], None] = _quiet
) -> AsyncIterator[World]:
    """The whole system, started; `say` hears what start-up is doing (it takes seconds)."""
    settings = demo_settings(options)
    faults = options.faults
    fast = options.profile is Profile.FAST
    members = build_members(options.meters, options.seed, hub_msisdn=SHORT_CODE)
    async with AsyncExitStack() as stack:
        say(f"the store in {options.data_dir}")
        store = await stack.enter_async_context(Store.from_settings(settings))
        await store.migrate()
        master = settings.security.load_master_key()
        assert master is not None
        registry = Registry(store, master_key=master, pin_policy=settings.pin)
        say(f"the registry: {len(members)} meters and their customers' PINs")
        await _provision(registry, members)

        delays = (0.0, 0.0) if fast else (1.0, 5.0)
        network = await stack.enter_async_context(
            SmsNetwork(
                NetworkProfile(
                    min_delay=delays[0],
                    max_delay=delays[1],
                    loss_rate=faults.loss,
                    duplicate_rate=faults.duplicate,
                    reorder_rate=faults.reorder,
                ),
                seed=options.seed,
            )
        )
        say(f"{options.modems} emulated modem(s) behind the AT driver")
        timing = TimingProfile.FAST if fast else TimingProfile.REALISTIC
        emulators = [
            await stack.enter_async_context(
                ModemEmulator(
                    network,
                    f"+{FIRST_HUB_LINE + n}",
                    timing=timing,
                    faults=Faults(send_error_rate=faults.modem_errors),
                    seed=options.seed + n,
                    sim_slots=50,
                )
            )
            for n in range(options.modems)
        ]
        # The short code is the service's identity: SMS to it reach the hub's lines, and
        # what the lines send is presented as coming from it.
        network.alias(SHORT_CODE, [e.msisdn for e in emulators], present_as_alias=True)

        data = options.data_dir
        spool = await stack.enter_async_context(Spool(data / "gateway-spool.db"))
        journal = await stack.enter_async_context(InboundJournal(data / "gateway-inbound.db"))
        await journal.recover(spool, datetime.now(UTC))
        pool = await stack.enter_async_context(
            ModemPool(
                [
                    ModemConfig(port=e.device_path, name=f"modem{n + 1}")
                    for n, e in enumerate(emulators)
                ],
                persist=journal.persist,
                config=PoolConfig(
                    min_interval=0.0 if fast else 6.0, retry_delay=1.0 if fast else 10.0
                ),
            )
        )
        sms = CountingCarrier(JournalledPool(pool, journal))
        gateway = await stack.enter_async_context(SpooledGateway("gw1", sms, spool))
        # As a gateway node does (gateway/service.py): acked and final SMS leave no text in
        # the spool's or the journal's WAL after a round.
        housekeeper = await stack.enter_async_context(
            Housekeeper(
                spool,
                [journal],
                retention=timedelta(hours=72),
                interval=5.0 if fast else 60.0,
                clock=lambda: datetime.now(UTC),
            )
        )

        say("the P2APST simulator and the hub")
        # The simulator's books live in the data directory, so that a restarted demo knows
        # what P2APST was paid and which token identifiers it used (tokens sealed, 0600).
        books_file = data / "p2apst-sim.db"
        if not books_file.exists() and await _has_transactions(store):
            raise DataDirError(
                f"{data}: the hub's store holds purchases but the P2APST simulator's books "
                "(p2apst-sim.db) are missing (a data directory of an older demo?): resuming "
                "would re-issue tokens the meters have used; use a new --data-dir"
            )
        books = stack.enter_context(Ledger(books_file, key=ledger_key(master)))
        paid_before = books.paid_count
        if books.starts > 1:
            say(f"resuming: the P2APST simulator's books hold {paid_before} paid purchases")
        simulator = await stack.enter_async_context(
            P2apstSimulator(
                sim_meters(members),
                ledger=books,
                faults=FaultPlan(
                    noanswer=faults.p2apst_noanswer, drop=faults.p2apst_drop, seed=options.seed
                ),
                seed=options.seed,
            )
        )
        sla = SlaMonitor(settings.sla)  # the hub's and its report outbox's
        outbox = HubReportOutbox(store, master, sla=sla)
        client = await stack.enter_async_context(
            P2apstClient(
                "127.0.0.1",
                simulator.port,
                journal=HubPurchaseJournal(store, master),
                outbox=outbox,
                settings=ClientSettings(
                    response_timeout=3.0 if fast else 30.0,
                    advice_timeout=3.0 if fast else 30.0,
                    advice_interval=1.0 if fast else 5.0,
                    report_retry_interval=1.0 if fast else 5.0,
                    resume_pending=False,  # the hub's sweep resumes purchases
                ),
            )
        )
        hub = await stack.enter_async_context(
            Hub(settings, store, registry, gateway, client, sla=sla)
        )
        counters = Counters()
        hub.on_sla_breach(lambda breach: counters.breach())

        make_private(data / "meters.db")  # the simulated meters' state, keys included: 0600
        meter_state = stack.enter_context(StateStore(data / "meters.db"))
        behaviour = Behaviour(
            typo_rate=faults.typos,
            wrong_pin_rate=faults.wrong_pin,
            repeat_rate=faults.repeats,
            seed=options.seed,
        )
        say(f"{len(members)} simulated meters and phones")
        fleet = await stack.enter_async_context(
            Fleet(
                members,
                network,
                meter_state,
                clock=lambda: datetime.now(UTC),
                short_code=SHORT_CODE,
                seed=options.seed,
                behaviour=behaviour,
                reporting_interval_min=options.telemetry_interval_min,
            )
        )
        rng = random.Random(options.seed)
        interval_s = options.telemetry_interval_min * 60
        for meter in fleet.meters:
            meter.spread_reports(rng.uniform(0, interval_s))
            if rng.random() < faults.meter_offline:
                meter.faults.offline_until = datetime.now(UTC) + timedelta(seconds=30)
            meter.faults.loss_rate = faults.meter_loss

        ap2t = Ap2tReceiver(token=secrets.token_hex(8))
        ap2t_url = await stack.enter_async_context(_serve(ap2t.app(), 0))
        web_url = None
        if options.web_port is not None:
            app = create_app(
                settings,
                store,
                registry,
                extra_routers=[push_router],
                status_provider=hub.status,
                ap2t_history=StoreAp2tHistory(store),
                actions=HubActions(hub),
            )
            app.state.pintar_hub = hub
            try:
                web_url = await stack.enter_async_context(_serve(app, options.web_port))
            except OSError as error:
                log.warning("helpdesk web app not started: %s", error)
        yield World(
            options, settings, store, registry, members, network, emulators, pool,
            simulator, hub, fleet, ap2t, ap2t_url, web_url, counters, sms, housekeeper,
            paid_before, sum(len(meter.credited) for meter in fleet.meters),
        )  # fmt: skip


async def _traffic(world: World, stop: asyncio.Event) -> None:
    """Customers buy tokens (and sometimes ask for their balance) at the configured rate."""
    starts = world.simulator.ledger.starts
    # A resumed run draws other customers and amounts than the run before it (the same
    # sequence would be all duplicates of what was just bought).
    seed = world.options.seed * 7919
    rng = random.Random(seed if starts <= 1 else f"{seed}/restart {starts}")
    interval = 1.0 / world.options.rate
    phones = world.fleet.phones
    # A customer does not buy the same amount twice within the hub's duplicate window
    # (the hub would rightly answer PURCHASE_DUPLICATE, and the demo count it as asked),
    # purchases of a run before this one on the data dir included.
    window = world.settings.hub.duplicate_window_s
    clock = asyncio.get_running_loop().time
    bought = await _recent_purchases(world, window, clock())
    while not stop.is_set():
        phone = rng.choice(phones)
        amounts = [
            amount
            for amount in DENOMINATIONS
            if clock() - bought.get((phone.msisdn, amount), -window) > window + 5.0
        ]
        if amounts and rng.random() < 0.9:
            amount = rng.choice(amounts)
            phone.buy(amount)
            bought[(phone.msisdn, amount)] = clock()
            world.counters.purchases_asked += 1
        else:
            phone.balance()
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def _recent_purchases(
    world: World, window: float, now: float
) -> dict[tuple[str, int], float]:
    """(phone, amount) → when (on the loop's clock) it was last bought, for the purchases
    the store holds from the last `window` seconds: read once, as the traffic starts (not
    on the live line's path, so its cost does not recur)."""
    t = schema.transactions
    since = datetime.now(UTC) - timedelta(seconds=window)
    async with world.store.read() as conn:
        rows = await conn.execute(
            select(t.c.phone_msisdn, t.c.amount_idr, t.c.created_at).where(
                t.c.created_at >= since, t.c.phone_msisdn.is_not(None)
            )
        )
        recent = list(rows)
    bought: dict[tuple[str, int], float] = {}
    for phone, amount, created in recent:
        age = (datetime.now(UTC) - created).total_seconds()
        key = (str(phone), int(amount))
        bought[key] = max(bought.get(key, -window), now - age)
    return bought


async def _live(world: World, out: TextIO, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)
        out.write(format_live(live_figures(world, datetime.now(UTC))) + "\n")
        out.flush()


def _say(out: TextIO, phase: str) -> Callable[[str], None]:
    def say(detail: str) -> None:
        out.write(format_phase(datetime.now(UTC), phase, detail) + "\n")
        out.flush()

    return say


async def _traffic_until_stopped(world: World, out: TextIO, interrupts: Interrupts) -> str:
    """Runs the traffic until `--duration` ends or a Ctrl-C; says which."""
    options = world.options
    world.fleet.start(tick_s=5.0)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_traffic(world, stop))]
    if options.live:
        tasks.append(asyncio.create_task(_live(world, out, stop)))
    try:
        if interrupts.stop.is_set():  # pressed during start-up
            return "interrupt"
        try:
            await asyncio.wait_for(interrupts.stop.wait(), options.duration)
        except TimeoutError:
            return "duration"
        return "interrupt"
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_demo(
    options: DemoOptions, out: TextIO = sys.stdout, interrupts: Interrupts | None = None
) -> dict[str, object]:
    """Runs the demo until `--duration` ends or `interrupts.stop` (the first Ctrl-C), then
    drains and returns the summary (printed, and written to `--summary`). `interrupts.cut`
    (a second Ctrl-C) ends the drain at once; the summary says it was cut short."""
    interrupts = interrupts or Interrupts()
    quiet = not options.live

    def on_press(presses: int) -> None:
        if presses == 1:
            out.write("\nCtrl-C: stopping the traffic; Ctrl-C again to skip the drain\n")
        else:
            out.write("\nCtrl-C: drain cut short; the summary shows what has settled\n")
        out.flush()

    interrupts.on_press(on_press)
    say = _quiet if quiet else _say(out, "starting")
    say(f"{options.meters} meters, {options.modems} modems, data in {options.data_dir}")
    async with build_world(options, say) as world:
        out.write(
            f"pintar demo: {options.meters} meters, {options.modems} modems "
            f"({', '.join(e.device_path for e in world.emulators)}), profile {options.profile}, "
            f"seed {options.seed}\n"
            f"  short code {SHORT_CODE}; P2APST simulator on 127.0.0.1:{world.simulator.port}; "
            f"AP2T receiver at {world.ap2t_url}\n"
        )
        if world.web_url:
            login = login_command(options.data_dir)
            out.write(f"  helpdesk web app at {world.web_url}; create a login: {login}\n")
        if options.duration is None:
            out.write("  running until Ctrl-C\n")
        out.flush()
        stopped_by = await _traffic_until_stopped(world, out, interrupts)
        out.write(
            f"traffic stopped ({stopped_by}); waiting up to {options.drain_seconds:g} s "
            "for answers in flight...\n"
        )
        out.flush()
        drain_say = _quiet if quiet else _say(out, "draining")

        def progress(elapsed: float, left: int) -> None:
            drain_say(
                f"{elapsed:.0f} s of at most {options.drain_seconds:g} s, "
                f"{left} paid purchases not settled yet | "
                + format_figures(live_figures(world, datetime.now(UTC)))
            )

        summary = await collect_summary(
            world, drain=options.drain_seconds, cut=interrupts.cut, progress=progress
        )
    summary = {"stopped_by": stopped_by, **summary}
    text = json.dumps(summary, indent=2, default=str)
    out.write(text + "\n")
    if options.summary is not None:
        options.summary.write_text(text + "\n", encoding="utf-8")
    return summary


async def run_demo_interactive(options: DemoOptions) -> dict[str, object]:
    """`run_demo` with Ctrl-C (and SIGTERM) wired to its interrupts: what `pintar demo` runs."""
    interrupts = Interrupts()
    interrupts.install()
    try:
        return await run_demo(options, interrupts=interrupts)
    finally:
        interrupts.remove()
