"""Beyond one machine: two `pintar hub` workers and two `pintar gateway` nodes, each its own
process, on the local Mosquitto (a unique topic root) and a scratch PostgreSQL database.

The test process plays the outside world: the SMS network with one emulated modem per
gateway (ptys the gateway processes open), the customers' phones and meters (meter_sim),
and PLN's P2APST (its simulator). It then checks the books from three sides: P2APST's
ledger (what was paid), the meters (what was credited), the phones (what customers were
told), and the hub database (what was stored)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Select, func, select
from sqlalchemy.engine import make_url

from meter_sim.fleet import Fleet, FleetMember, build_members, registry_csv, sim_meters
from meter_sim.meter.simulated import SimulatedMeter
from meter_sim.meter.state_store import StateStore
from meter_sim.modem_emulator import ModemEmulator, TimingProfile
from meter_sim.network import NetworkProfile, NetworkSms, NetworkStatusReport, SmsNetwork
from meter_sim.phones.inbox import NoticeKind
from operator_data.registry import Registry
from operator_data.settings import load_settings
from operator_data.store import Store, schema
from p2apst_adapter.simulator import P2apstSimulator
from tests.cluster_proxy import TcpProxy

pytestmark = [pytest.mark.services, pytest.mark.timeout(400)]

PINTAR = Path(sys.executable).with_name("pintar")
SHORT_CODE = "87000"
FIRST_LINE = 6281700000001
SETTLED = {"reported", "declined", "applied", "meter_rejected", "meter_timeout"}


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Poll cross-process state (database, other processes) until `check()` holds."""
    try:
        async with asyncio.timeout(seconds):
            # Polling: the state lives in other processes, nothing here can notify us.
            while not await check():  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds} s waiting for {what}") from None


@asynccontextmanager
async def scratch_database(postgres_url: str) -> AsyncIterator[str]:
    url = make_url(postgres_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"pintar_cluster_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def clean_environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PINTAR_")}
    environment.update(extra)
    return environment


async def pintar(*args: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        str(PINTAR),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, (args, out, err)
    return out.decode()


@asynccontextmanager
async def service(
    args: list[str], ready: bytes, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A long-running `pintar` process, yielded once it printed its ready line."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(PINTAR), *args, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env
        )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = await process.stdout.readline()
        assert ready in line, (args, line, log.read_text()[-2000:])
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def hub_config(
    tmp: Path, root: str, p2apst_port: int, broker_port: int, denominations: Sequence[int]
) -> Path:
    key = tmp / "master.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    path = tmp / "hub.toml"
    path.write_text(
        f'data_dir = "{tmp / "hub-data"}"\n'
        f'[service]\nshort_code = "{SHORT_CODE}"\n'
        "[pin]\nlength = 4\n"
        "[sla]\nmeter_answer_s = 30.0\n"
        f"[hub]\ndenominations_idr = [{', '.join(str(d) for d in denominations)}]\n"
        "sweep_interval_s = 1.0\npurchase_restart_after_s = 10.0\n"
        # Small batches: one event in a batch that fails (another worker applied it a
        # moment earlier) has the whole batch redone in parts.
        "batch_size = 50\n"
        # A send lost between the broker and a gateway's spool (a cut, a kill) is offered
        # again after this: short enough to happen within the run.
        "send_result_timeout_s = 10.0\n"
        f'[security]\nmaster_key_file = "{key}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\ntopic_root = "{root}"\n'
        "max_backoff = 1.0\n"
        f'[p2apst]\nhost = "127.0.0.1"\nport = {p2apst_port}\n'
        "response_timeout = 3.0\nadvice_timeout = 3.0\nadvice_interval = 1.0\n"
        "report_retry_interval = 1.0\nstan_lanes = 2\n"
    )
    return path


def gateway_config(tmp: Path, name: str, root: str, broker_port: int, port: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\n'
        f'spool_path = "{tmp / name / "spool.db"}"\n'
        'carrier = "modems"\n'
        # Long enough that a busy worker acks before its events go out again to the other.
        "redeliver_after = 15.0\n"
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\ntopic_root = "{root}"\n'
        "max_backoff = 1.0\n"
        "[pool]\nmin_interval = 0.0\nretry_delay = 0.5\n"
        f'[[modems]]\nport = "{port}"\nname = "m1"\n'
    )
    return path


async def provision(config: Path, env: dict[str, str], members: list[FleetMember]) -> None:
    """Schema by `pintar db upgrade`, meters by `pintar registry import`, PINs directly
    (customers choose them by SMS in real life; the registry call is that step's effect)."""
    await pintar("db", "upgrade", "--config", str(config), env=env)
    csv = config.parent / "registry.csv"
    csv.write_text(registry_csv(members), encoding="utf-8")
    imported = json.loads(
        await pintar("registry", "import", str(csv), "--config", str(config), env=env)
    )
    assert imported["imported"] is True
    settings = load_settings(config, database={"url": env["PINTAR_DATABASE__URL"]})
    async with Store.from_settings(settings) as store:
        registry = Registry(
            store, master_key=settings.security.load_master_key(), pin_policy=settings.pin
        )
        for member in members:
            await registry.set_pin(member.phone_msisdn, member.pin, actor="test")


async def count(store: Store, query: Select[tuple[int]] | Select[int]) -> int:
    async with store.read() as conn:
        return int(await conn.scalar(query) or 0)


class RecordingLine:
    """One of the hub's modem lines on the network, noting every SMS the network handed
    over (the modem stored it): exactly what the hub must end up storing, once each."""

    def __init__(self, modem: ModemEmulator, delivered: list[NetworkSms]) -> None:
        self.modem = modem
        self.delivered = delivered

    async def receive_sms(self, sms: NetworkSms) -> bool:
        taken = await self.modem.receive_sms(sms)
        if taken:
            self.delivered.append(sms)
        return taken

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        await self.modem.receive_status_report(report)


@dataclass
class Cluster:
    """The outside world in this process; hub workers and gateway nodes as processes."""

    tmp: Path
    root: str
    config: Path
    env: dict[str, str]
    modems: list[ModemEmulator]
    simulator: P2apstSimulator
    fleet: Fleet
    store: Store
    stack: AsyncExitStack
    broker: TcpProxy
    delivered: list[NetworkSms]
    hubs: dict[str, AsyncExitStack] = field(default_factory=dict)
    gateways: dict[str, AsyncExitStack] = field(default_factory=dict)
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    async def start_hub(self, name: str) -> None:
        stack = AsyncExitStack()
        self.processes[name] = await stack.enter_async_context(
            service(
                ["hub", "--config", str(self.config), "--worker-id", name],
                b'"status": "ready"',
                # Each worker draws its STANs in a lane of its own ("hub-0", "hub-1").
                {**self.env, "PINTAR_P2APST__STAN_LANE": name.rsplit("-", 1)[-1]},
                self.tmp / f"{name}.log",
            )
        )
        self.hubs[name] = stack

    async def start_gateway(self, name: str, modem: ModemEmulator) -> None:
        stack = AsyncExitStack()
        config = gateway_config(self.tmp, name, self.root, self.broker.port, modem.device_path)
        self.processes[name] = await stack.enter_async_context(
            service(
                ["gateway", "--config", str(config)],
                b'"status": "connected"',
                self.env,
                self.tmp / f"{name}.log",
            )
        )
        self.gateways[name] = stack

    async def kill(self, name: str) -> None:
        """SIGKILL: no goodbye to the broker, the database or the modem."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            await process.wait()
        await (self.hubs.pop(name, None) or self.gateways.pop(name)).aclose()

    async def terminate(self, name: str) -> int | None:
        """SIGTERM, as systemd stops a unit; returns the exit status."""
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await process.wait()
        await (self.hubs.pop(name, None) or self.gateways.pop(name)).aclose()
        return process.returncode

    async def stop_all(self) -> None:
        for stack in [*self.gateways.values(), *self.hubs.values()]:
            await stack.aclose()

    def hub_log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def receipts(self) -> int:
        return sum(len(p.receipts()) for p in self.fleet.phones)


@asynccontextmanager
async def running_cluster(
    postgres_url: str,
    mosquitto_url: str,
    tmp: Path,
    meters: int,
    seed: int,
    *,
    denominations: Sequence[int] = (20_000, 50_000, 100_000),
) -> AsyncIterator[Cluster]:
    root = f"pintar-test-{uuid.uuid4().hex[:10]}/v1"
    members = build_members(meters, seed=seed, hub_msisdn=SHORT_CODE)
    broker_url = urlsplit(mosquitto_url)
    async with AsyncExitStack() as stack:
        # Every process reaches the broker through this proxy, so a test can cut them off.
        broker = await stack.enter_async_context(
            TcpProxy(broker_url.hostname or "127.0.0.1", broker_url.port or 1883)
        )
        database = await stack.enter_async_context(scratch_database(postgres_url))
        # No loss or duplicates, and an SMSC that keeps trying while a gateway is down and
        # its SIM fills up: every SMS sent reaches a hub line sooner or later.
        network = await stack.enter_async_context(
            SmsNetwork(
                NetworkProfile(min_delay=0.0, max_delay=0.0, retry_interval=0.5, max_attempts=1000),
                seed=seed,
            )
        )
        modems = [
            await stack.enter_async_context(
                ModemEmulator(
                    network, f"+{FIRST_LINE + n}", timing=TimingProfile.FAST, seed=n, sim_slots=50
                )
            )
            for n in range(2)
        ]
        delivered: list[NetworkSms] = []
        for modem in modems:
            network.attach(modem.msisdn, RecordingLine(modem, delivered))
        network.alias(SHORT_CODE, [m.msisdn for m in modems], present_as_alias=True)
        simulator = await stack.enter_async_context(P2apstSimulator(sim_meters(members), seed=seed))
        config = hub_config(tmp, root, simulator.port, broker.port, denominations)
        env = clean_environment(PINTAR_DATABASE__URL=database)
        await provision(config, env, members)
        state = stack.enter_context(StateStore(tmp / "meters.db"))
        fleet = await stack.enter_async_context(
            Fleet(
                members,
                network,
                state,
                clock=lambda: datetime.now(UTC),
                short_code=SHORT_CODE,
                seed=seed,
            )
        )
        settings = load_settings(config, database={"url": database})
        store = await stack.enter_async_context(Store.from_settings(settings))
        cluster = Cluster(
            tmp, root, config, env, modems, simulator, fleet, store, stack, broker, delivered
        )
        try:
            for name in ("hub-0", "hub-1"):
                await cluster.start_hub(name)
            for n, modem in enumerate(modems):
                await cluster.start_gateway(f"gw-{uuid.uuid4().hex[:6]}-{n}", modem)
            yield cluster
        finally:
            await cluster.stop_all()


async def _states(store: Store) -> dict[str, str]:
    txs = schema.transactions
    async with store.read() as conn:
        rows = await conn.execute(select(txs.c.id, txs.c.state))
        return {str(i): str(s) for i, s in rows}


def settled(cluster: Cluster, purchases: int) -> Callable[[], Awaitable[bool]]:
    per_phone = purchases // len(cluster.fleet.phones)

    async def check() -> bool:
        states = await _states(cluster.store)
        return (
            len(states) == purchases
            and all(s in SETTLED for s in states.values())
            # Every phone its own receipts (a total could hide one phone's missing receipt
            # behind another's duplicate, which the books then report).
            and all(len(p.receipts()) >= per_phone for p in cluster.fleet.phones)
            # And its "purchase accepted" replies: one claimed by a worker killed mid-send
            # waits for that worker's outbox lease, so it can come after the receipt.
            and all(
                len({n.ref for n in p.notices(NoticeKind.PURCHASE_ACCEPTED)}) >= per_phone
                for p in cluster.fleet.phones
            )
        )

    return check


async def _stored_inbound(store: Store) -> list[tuple[str | None, str | None, bytes | None]]:
    msgs = schema.messages
    async with store.read() as conn:
        rows = await conn.execute(
            select(msgs.c.peer_msisdn, msgs.c.flow, msgs.c.raw_pdu).where(msgs.c.direction == "in")
        )
        return [
            (r.peer_msisdn, r.flow, None if r.raw_pdu is None else bytes(r.raw_pdu)) for r in rows
        ]


def all_stored(cluster: Cluster) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(await _stored_inbound(cluster.store)) >= len(cluster.delivered)

    return check


async def diagnosis(cluster: Cluster) -> str:
    """What the cluster looks like, for a failure message."""
    msgs = schema.messages
    async with cluster.store.read() as conn:
        states = Counter((await _states(cluster.store)).values())
        messages = Counter(
            f"{r.direction}/{r.flow}/{r.state}"
            for r in await conn.execute(select(msgs.c.direction, msgs.c.flow, msgs.c.state))
        )
        outbox = Counter(
            str(r.claimed_by) for r in await conn.execute(select(schema.outbox.c.claimed_by))
        )
    return (
        f"transactions {dict(states)}; messages {dict(messages)}; outbox {dict(outbox)}; "
        f"lines took {len(cluster.delivered)}; receipts {cluster.receipts()}; "
        f"broker proxy: {cluster.broker.open_connections} open, {cluster.broker.accepted} "
        f"accepted, {cluster.broker.cuts} cut(s)"
    )


async def check_the_books(cluster: Cluster, purchases: int, per_phone: int) -> None:
    """Paid once, credited once, one receipt each, every SMS the hub's lines took stored
    once — also when a gateway was SIGKILLed mid-send (its modems store then send, so the
    restarted gateway reads what went out from the SIM instead of sending it again)."""
    paid = cluster.simulator.ledger.paid()
    credited = Counter(r.token for meter in cluster.fleet.meters for r in meter.credited)
    assert len(paid) == purchases
    assert len({e.switcher_reference for e in paid}) == purchases
    assert credited == Counter(e.token for e in paid), credited  # each exactly once
    # Phones whose receipts are off, with each receipt's ref and how often it came.
    off = {
        phone.msisdn: Counter(r.ref for r in phone.receipts())
        for phone in cluster.fleet.phones
        if len(phone.receipts()) != per_phone
    }
    assert not off, off
    for phone in cluster.fleet.phones:
        receipts = phone.receipts()
        assert len({r.ref for r in receipts}) == per_phone, [s.text for s in phone.inbox]
        # Each purchase SMS answered once, and never with "duplicate" (nobody sent one twice).
        accepted = phone.notices(NoticeKind.PURCHASE_ACCEPTED)
        assert len({n.ref for n in accepted}) == per_phone, [s.text for s in phone.inbox]
        assert len(accepted) == per_phone, [s.text for s in phone.inbox]
        assert not phone.notices(NoticeKind.PURCHASE_DUPLICATE), [s.text for s in phone.inbox]
    msgs = schema.messages
    async with cluster.store.read() as conn:
        receipt_rows = Counter(
            str(t)
            for t in await conn.scalars(
                select(msgs.c.transaction_id).where(
                    msgs.c.direction == "out", msgs.c.kind == "receipt"
                )
            )
        )
    assert len(receipt_rows) == purchases
    assert set(receipt_rows.values()) == {1}, receipt_rows.most_common(3)
    # No inbound SMS lost or stored twice: what the lines took is what the hub holds.
    stored = await _stored_inbound(cluster.store)
    phones = {p.msisdn for p in cluster.fleet.phones}
    meters = {m.identity.msisdn for m in cluster.fleet.meters}
    assert len(stored) == len(cluster.delivered)
    assert Counter(peer for peer, _, _ in stored if peer in phones) == Counter(
        sms.sender for sms in cluster.delivered if sms.sender in phones
    )
    assert Counter((peer, pdu) for peer, _, pdu in stored if peer in meters) == Counter(
        (sms.sender, sms.data) for sms in cluster.delivered if sms.sender in meters
    )
    # ...and the network did take every SMS the phones sent.
    for phone in cluster.fleet.phones:
        assert sum(1 for sms in cluster.delivered if sms.sender == phone.msisdn) == len(phone.sent)
    states = await _states(cluster.store)
    assert set(states.values()) <= {"reported", "applied"}, Counter(states.values())


async def test_two_hubs_and_two_gateways_as_processes_settle_every_purchase_once(
    postgres_url: str, mosquitto_url: str, tmp_path: Path
) -> None:
    amounts = (20_000, 50_000)  # one each per phone: no two alike within the window
    async with running_cluster(postgres_url, mosquitto_url, tmp_path, meters=4, seed=11) as cluster:
        for amount in amounts:
            for phone in cluster.fleet.phones:
                phone.buy(amount)
        purchases = len(amounts) * len(cluster.fleet.phones)
        await until(settled(cluster, purchases), 90, "every purchase to settle")
        await until(all_stored(cluster), 30, "every inbound SMS to be stored")
        await check_the_books(cluster, purchases, len(amounts))
        # Both workers took part: the broker shares the events between them.
        assert all("token of" in cluster.hub_log(name) for name in ("hub-0", "hub-1"))
        # SIGTERM stops each process cleanly (exit status 0).
        for name in [*cluster.gateways, *cluster.hubs]:
            assert await cluster.terminate(name) == 0, cluster.hub_log(name)[-2000:]


@dataclass(frozen=True)
class ChaosSize:
    """How big a chaos run is; PINTAR_TEST_CHAOS_SCALE multiplies the meter count (1.0:
    50 meters and phones, 10 purchases each, and 1.5 telemetry reports per purchase, so
    every meter reports every several seconds while the purchases run)."""

    meters: int
    per_phone: int
    reports_per_purchase: float
    in_flight: int

    @classmethod
    def from_environment(cls) -> ChaosSize:
        scale = float(os.environ.get("PINTAR_TEST_CHAOS_SCALE") or 1.0)
        return cls(
            meters=max(4, round(50 * scale)),
            per_phone=10,
            reports_per_purchase=1.5,
            in_flight=max(8, round(120 * scale)),
        )


async def report_telemetry(meter: SimulatedMeter) -> None:
    """The meter sends a telemetry report now: its own schedule, brought forward."""
    meter.next_telemetry_at = datetime.now(UTC)
    await meter.tick()


async def run_traffic(cluster: Cluster, amounts: Sequence[int], size: ChaosSize) -> None:
    """Every phone buys each amount once (distinct amounts: no duplicate within the
    window), keeping at most `size.in_flight` purchases unreceipted at a time; in between,
    the meters report telemetry in turn (in proportion to the purchases, so the mix is the
    same however fast the machine is)."""
    meters = cluster.fleet.meters
    sent = reports = 0
    for amount in amounts:
        for phone in cluster.fleet.phones:

            async def room(sent: int = sent) -> bool:
                return sent - cluster.receipts() < size.in_flight

            await until(room, 120, f"room for purchase {sent + 1}")
            phone.buy(amount)
            sent += 1
            while reports < sent * size.reports_per_purchase:
                await report_telemetry(meters[reports % len(meters)])
                reports += 1


async def test_killing_a_hub_worker_a_gateway_and_the_broker_link_loses_and_repeats_nothing(
    postgres_url: str, mosquitto_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PINTAR_TEST_CHAOS_SEED") or int.from_bytes(os.urandom(2), "big"))
    rng = random.Random(seed)
    size = ChaosSize.from_environment()
    print(f"chaos seed {seed}, {size}")  # PINTAR_TEST_CHAOS_SEED replays a failure
    amounts = [20_000 + 1_000 * n for n in range(size.per_phone)]
    clock = asyncio.get_running_loop().time
    started = clock()
    async with running_cluster(
        postgres_url, mosquitto_url, tmp_path, meters=size.meters, seed=seed, denominations=amounts
    ) as cluster:
        phones = cluster.fleet.phones
        purchases = len(amounts) * len(phones)
        # "Random moments": after a random number of receipts have reached the phones.
        events = [
            ("kill", rng.choice(["hub-0", "hub-1"])),
            ("kill", rng.choice(sorted(cluster.gateways))),
            ("cut", "broker"),
        ]
        rng.shuffle(events)
        moments = sorted(rng.sample(range(purchases // 10, purchases * 8 // 10), len(events)))
        print(f"chaos: cluster up at {clock() - started:.0f} s (loop time {clock():.0f})")
        traffic = asyncio.create_task(run_traffic(cluster, amounts, size))
        try:
            await _chaos(cluster, events, moments, rng)
            await traffic
            print(f"chaos: every purchase sent at {clock() - started:.0f} s")
            await until(settled(cluster, purchases), 150, f"every purchase to settle (seed {seed})")
            print(f"chaos: every purchase settled at {clock() - started:.0f} s")
            await until(all_stored(cluster), 60, f"every inbound SMS to be stored (seed {seed})")
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{await diagnosis(cluster)}") from None
        finally:
            traffic.cancel()
            await asyncio.gather(traffic, return_exceptions=True)
        await check_the_books(cluster, purchases, len(amounts))
        msgs = schema.messages
        total = await count(cluster.store, select(func.count()).select_from(msgs))
        inbound = await count(
            cluster.store, select(func.count()).select_from(msgs).where(msgs.c.direction == "in")
        )
        took = clock() - started
        print(
            f"chaos seed {seed}: {purchases} purchases, {total} SMS stored ({inbound} inbound, "
            f"{len(cluster.delivered)} taken by the lines), {events}, {took:.0f} s"
        )


async def _chaos(
    cluster: Cluster, events: list[tuple[str, str]], moments: list[int], rng: random.Random
) -> None:
    """Each event once its moment (a count of receipts the phones have) has come."""
    clock = asyncio.get_running_loop().time
    for (action, victim), moment in zip(events, moments, strict=True):

        async def reached(moment: int = moment) -> bool:
            return cluster.receipts() >= moment

        await until(reached, 150, f"{moment} receipts before {action} {victim}")
        print(f"chaos: {action} {victim} after {moment} receipts at {clock():.0f}")
        if action == "cut":
            dropped = cluster.broker.cut(refuse_for=rng.uniform(0.2, 2.0))
            assert dropped >= 4, dropped  # two hubs and two gateways, at least
            continue
        modem = cluster.modems[int(victim[-1])] if victim.startswith("gw-") else None
        await cluster.kill(victim)
        if modem is None:
            await cluster.start_hub(victim)
        else:
            await cluster.start_gateway(victim, modem)
