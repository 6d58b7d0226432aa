"""Hub workers on PostgreSQL: the same meter TELEMETRY inbound load consumed by one and by
two `pintar hub` processes sharing one database, fed over the MQTT bus as the cluster runs
(a real `GatewayBridge` over a `SpooledGateway`, events shared by `$share/<group>/...`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.hub_pipeline import (
    PG_ADMIN,
    SHORT_CODE,
    fill_pg,
    pg_scratch,
    postgres_up,
    telemetry_pdus,
)
from bench.report import Row, Section
from gateway.mqtt import GatewayBridge
from gateway.mqtt.connection import MqttSettings
from gateway.mqtt.topics import Topics, parse_ack
from gateway.pdu import Deliver, decode
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from gateway.transport import InboundSms, OutboundSms, TransportEvent
from operator_data.crypto import MasterKey
from operator_data.store import Store, schema

NAME = "hub_workers"
TITLE = "Hub workers on PostgreSQL: inbound throughput with one and two `pintar hub` processes"
DEFAULT_SIZE = 3000  # meter SMS per measured case (one worker, then two)
SMOKE_SIZE = 40
REGISTRY = 10_000
SENDERS_CAP = 2_000
WARM_UP_PER_WORKER = 10
GATEWAYS = 4  # publishing at once, so that the offered load stays ahead of the workers
BROKER = ("127.0.0.1", 1883)
PINTAR = Path(sys.executable).with_name("pintar")
READY_S = 60.0  # a worker process must print its ready line within this
STOP_S = 20.0

METHOD = """\
A scratch PostgreSQL database on 127.0.0.1:5432 (server defaults, synchronous_commit on) is
migrated and gets a 10,000-meter registry by bulk insert (as hub_pipeline). Hub workers
are real `pintar hub --config FILE --worker-id ID` processes on that database and the local
Mosquitto, under a topic root unique to the run, with the shipped defaults (batch_size 500,
sweep every 5 s) and no P2APST host (purchases would be refused; this load makes none).
A worker counts as started when it prints its `ready` line (its shared subscription is
active). The gateway side runs in the benchmark process: 4 gateways, each a real
`GatewayBridge` over a `SpooledGateway` whose spool (SQLite, synchronous=FULL) was filled
beforehand, outside the timed section, with its share of `InboundSms` events: meter
TELEMETRY frames sealed by the real `Endpoint(role=Role.METER)` (each meter a few frames
at most, counters increasing), encoded as SMS-DELIVER PDUs and decoded again as a gateway
does (data = frame, raw_pdus). Timed: the 4 bridges connect at once, each replays its spool
and publishes every event at QoS 1 (four publishers, so that the offered load stays ahead
of the workers: one sequential QoS 1 publisher alone was the bottleneck); the workers take
them through `$share/hub/...`, store them (one transaction per batch of whatever has
queued) and ack each one on its gateway's ack topic. An observer client subscribed to the
events and ack topics times each case: throughput = events / (first event seen on the bus
→ last event id seen acked). Order: one worker — a warm-up gateway (10 events, all acked),
then the measured load; then a second worker is started on the same database, and the
same is done (20 warm-up events) with fresh meters. Each case checks that every event id
was acked and that the database holds exactly one reading per event sent so far. CPU
seconds (from /proc) are counted over the timed section for each hub worker, the
PostgreSQL backends serving the scratch database (a lower bound: a pooled connection
closed during the load is missed), the benchmark process (gateways and observer), and
Mosquitto; the machine's busy share comes from /proc/stat."""
REDELIVER_AFTER = 5.0  # seconds; production's default is 30

NOTES = [
    "This machine has 2 cores, and Mosquitto, PostgreSQL, the 4 publishing gateways (and the "
    "observer) and the hub workers all share them, usually with other people's tests "
    "running at the same time (see the load averages, the CPU split and the cores' busy "
    "share in each row). A second worker process can add only what idle CPU is left, and a "
    "case whose cores were far from busy waited on something else (the broker's queue "
    "limit and the gateways' re-delivery, below): the ratio says little more than that two "
    "workers share the load correctly, not how the hub scales where its workers have cores "
    "of their own. Runs on this machine have given ratios from 0.65× to 3.3×. On such a "
    "machine, look at the hub workers' CPU seconds per SMS rather than at wall-clock rates.",
    "The gateways and the observer cost more CPU here than a hub worker does: publishing at "
    "QoS 1, applying acks to a synchronous=FULL spool (one transaction per ack message: "
    "a hub worker sends a batch's acks to a gateway as one message), and receiving a copy "
    "of every event. In a deployment they run on the gateway nodes, not on the hub's cores.",
    "The local broker runs with Mosquitto's default max_queued_messages (1,000): a worker "
    "that lags more than that behind the burst of 3,000 loses the surplus at the broker "
    "and gets it again from the gateways' re-delivery (5 s here), so a slow case may "
    "include such a wait. deploy/mosquitto raises the limit to 10,000.",
    "Mosquitto hands shared-subscription messages out round-robin, not to whichever worker "
    "is idle: with two workers each gets half of the events at once, so a case ends when "
    "the slower worker has finished its half.",
    "The two-worker case runs second on the same database: its message log already holds "
    "the one-worker case's rows, and the first worker is already warm (the second is warmed "
    "by the warm-up events). Load and other users' work change between the two cases: "
    "compare the two rows' load averages and busy shares before reading the ratio.",
    "hub_pipeline feeds one in-process hub through a transport with no broker; here the "
    "events cross the broker twice (event in, ack out) and each worker batches whatever "
    "the broker has handed it, so the two sets of figures are related, not the same "
    "measurement.",
]


def _broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=3):
            return True
    except OSError:
        return False


# -- the traffic -----------------------------------------------------------------------------


def _events(gateway: str, first_meter: int, size: int) -> list[InboundSms]:
    """`size` TELEMETRY SMS from up to SENDERS_CAP meters starting at `first_meter`, as the
    gateway's modem pool would spool them."""
    senders = max(1, min(SENDERS_CAP, size))
    events = []
    pdus = telemetry_pdus(range(first_meter, first_meter + senders), size)
    for n, pdu in enumerate(pdus):
        deliver = decode(pdu).pdu
        assert isinstance(deliver, Deliver)
        events.append(
            InboundSms(
                event_id=f"{gateway}-{n}",
                sender=deliver.sender,
                received_at=datetime.now(UTC),
                data=deliver.data,
                text=deliver.text,
                smsc_timestamp=deliver.timestamp,
                gateway=gateway,
                modem="m1",
                raw_pdus=(pdu,),
            )
        )
    return events


class SpoolOnly:
    """A carrier with nothing to add: every event is in the spool before the bridge starts,
    and the meter load needs no replies (an SMS the hub would send is only counted)."""

    def __init__(self) -> None:
        self.submitted = 0

    async def submit(self, sms: OutboundSms) -> None:
        self.submitted += 1

    async def carrier_events(self) -> AsyncIterator[TransportEvent]:
        return
        yield  # an async generator that never yields


# -- watching the bus -----------------------------------------------------------------------


@dataclass(slots=True)
class Watch:
    """What the observer saw of one gateway: its first event on the bus, and each ack."""

    expected: set[str]
    first_event: float | None = None
    last_event: float | None = None
    acked: dict[str, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Observer:
    """One MQTT client on every gateway's events and ack topics of this run's root."""

    def __init__(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._topics = settings.topics
        self._watches: dict[str, Watch] = {}
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None

    def watch(self, gateway: str, event_ids: set[str]) -> Watch:
        self._watches[gateway] = watch = Watch(set(event_ids))
        return watch

    async def __aenter__(self) -> Observer:
        client = self._settings.client(f"bench-observer-{secrets.token_hex(4)}", persistent=False)
        self._client = await client.__aenter__()
        root = self._topics.root
        # QoS 0 for the copies of the events: only the first one's arrival matters.
        await client.subscribe(f"{root}/gw/+/events", qos=0)
        await client.subscribe(f"{root}/gw/+/ack", qos=1)
        self._task = asyncio.create_task(self._read(client))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    async def clear_status(self, gateways: list[str]) -> None:
        """Removes the bridges' retained `online` status: leave the shared broker clean."""
        assert self._client is not None
        for gateway in gateways:
            await self._client.publish(self._topics.status(gateway), b"", qos=1, retain=True)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            now = time.perf_counter()
            topic = message.topic.value
            gateway = self._topics.gateway_of(topic) or ""
            watch = self._watches.get(gateway)
            if watch is None:
                continue
            if topic == self._topics.events(gateway):
                if watch.first_event is None:
                    watch.first_event = now
                watch.last_event = now
            elif topic == self._topics.ack(gateway):
                raw = message.payload if isinstance(message.payload, bytes) else b""
                for event_id in parse_ack(raw):
                    if event_id in watch.expected:
                        watch.acked.setdefault(event_id, now)
                if len(watch.acked) == len(watch.expected):
                    watch.done.set()


def _process_cpu(pid: int) -> float | None:
    """CPU seconds a process has used (user + system), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # utime and stime are fields 14 and 15; count after the ")" that closes the name.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _broker_pids() -> set[int]:
    """The local Mosquitto's process(es), found by name (it is not ours to ask)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "mosquitto":
                    pids.add(int(entry.name))
    return pids


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of every core since boot, from /proc/stat's `cpu` line."""
    times = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = times[3] + times[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(times) - idle) / tick, sum(times) / tick


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds over one timed load, by who used them."""

    workers: tuple[float, ...]
    postgres: float  # the backends serving the scratch database
    gateways: float  # this process: the bridges, their spools and the observer
    broker: float  # Mosquitto, which other people's tests may be using too
    busy: float  # share of the whole machine's CPU time that was busy

    def describe(self, size: int) -> str:
        workers = " + ".join(f"{c:.1f}" for c in self.workers)
        per_sms = (sum(self.workers) + self.postgres) / size * 1000
        return (
            f"CPU seconds: hub worker(s) {workers}, their PostgreSQL backends ≥ "
            f"{self.postgres:.1f} (≥ {per_sms:.2f} ms of hub + database CPU per SMS), "
            f"gateways + observer {self.gateways:.1f}, broker {self.broker:.1f}; the "
            f"machine's {os.cpu_count()} cores were {self.busy:.0%} busy"
        )


class CpuMeter:
    """Where the CPU went during a load: the hub workers, PostgreSQL's backends for the
    scratch database, this process, and the machine as a whole (other people's work too)."""

    def __init__(self, workers: list[int], database: str) -> None:
        self._workers = workers
        self._database = database
        self._start: dict[int, float] = {}
        self._backends: set[int] = set()
        self._broker = _broker_pids()
        self._self = 0.0
        self._machine = (0.0, 0.0)

    async def _backend_pids(self) -> set[int]:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", self._database
            )
        finally:
            await conn.close()
        return {int(row["pid"]) for row in rows}

    def _sample(self, pids: set[int]) -> dict[int, float]:
        return {pid: cpu for pid in pids if (cpu := _process_cpu(pid)) is not None}

    async def start(self) -> None:
        self._backends = await self._backend_pids()
        self._start = self._sample({*self._workers, *self._backends, *self._broker})
        self._self = time.process_time()
        self._machine = _machine_cpu()

    async def stop(self) -> Usage:
        machine = _machine_cpu()
        used_self = time.process_time() - self._self
        # A backend that appeared meanwhile counts from zero (it started during the load);
        # one that ended is missed: the figure is a lower bound.
        self._backends |= await self._backend_pids()
        now = self._sample({*self._workers, *self._backends, *self._broker})

        def used(pid: int) -> float:
            return now.get(pid, self._start.get(pid, 0.0)) - self._start.get(pid, 0.0)

        total = machine[1] - self._machine[1]
        return Usage(
            tuple(used(pid) for pid in self._workers),
            sum(used(pid) for pid in self._backends),
            used_self,
            sum(used(pid) for pid in self._broker),
            (machine[0] - self._machine[0]) / total if total > 0 else 0.0,
        )


@dataclass(frozen=True, slots=True)
class Span:
    """One load on the bus: first event seen → last event seen, and → last ack seen; and
    the CPU the workers and the whole machine used from the bridges' start to the end."""

    publishing: float
    seconds: float
    cpu: Usage


async def _publish_and_wait(
    workdir: Path,
    settings: MqttSettings,
    observer: Observer,
    loads: dict[str, list[InboundSms]],
    meter: CpuMeter,
) -> Span:
    """Spools each gateway's events, starts every gateway's bridge at once, and returns
    once every event is acked."""
    watches: list[Watch] = []
    async with contextlib.AsyncExitStack() as stack:
        spools: dict[str, Spool] = {}
        for gateway, events in loads.items():
            spool = await stack.enter_async_context(Spool(workdir / f"{gateway}.spool"))
            now = datetime.now(UTC)
            for event in events:
                await spool.record_event(event, now)
            spools[gateway] = spool
            watches.append(observer.watch(gateway, {e.event_id for e in events}))
        await meter.start()
        for gateway, spool in spools.items():
            # The local broker keeps Mosquitto's default max_queued_messages (1,000): when a
            # worker lags further behind the burst, the broker drops the rest for it and
            # the gateways' re-delivery brings them back (docs/bus.md), as in production.
            node = await stack.enter_async_context(
                SpooledGateway(gateway, SpoolOnly(), spool, redeliver_after=REDELIVER_AFTER)
            )
            await stack.enter_async_context(GatewayBridge(gateway, node, settings))
        total = sum(len(events) for events in loads.values())
        deadline = 60.0 + 0.25 * total
        try:
            async with asyncio.timeout(deadline):
                for watch in watches:
                    await watch.done.wait()
        except TimeoutError:
            acked = sum(len(w.acked) for w in watches)
            raise RuntimeError(f"{acked} of {total} events acked within {deadline:.0f} s") from None
        usage = await meter.stop()
    first = min(w.first_event or 0.0 for w in watches)
    last_event = max(w.last_event or 0.0 for w in watches)
    last_ack = max(max(w.acked.values()) for w in watches)
    return Span(last_event - first, last_ack - first, usage)


# -- the hub workers -------------------------------------------------------------------------


def _hub_config(workdir: Path, root: str, key_hex: str) -> Path:
    key = workdir / "master.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key_hex + "\n")
    path = workdir / "hub.toml"
    path.write_text(
        f'data_dir = "{workdir / "hub-data"}"\n'
        f'[service]\nshort_code = "{SHORT_CODE}"\n'
        f'[security]\nmaster_key_file = "{key}"\n'
        f'[mqtt]\nhost = "{BROKER[0]}"\nport = {BROKER[1]}\ntopic_root = "{root}"\n'
        "max_backoff = 1.0\n",
        encoding="utf-8",
    )
    return path


@contextlib.asynccontextmanager
async def _worker(
    config: Path, worker_id: str, database: str, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A `pintar hub` process, yielded once it printed its ready line; SIGTERM on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINTAR_")}
    env["PINTAR_DATABASE__URL"] = database
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(PINTAR),
            "hub",
            "--config",
            str(config),
            "--worker-id",
            worker_id,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    try:
        assert process.stdout is not None
        try:
            async with asyncio.timeout(READY_S):
                line = await process.stdout.readline()
        except TimeoutError:
            line = b""
        if b'"status": "ready"' not in line:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"hub worker {worker_id} did not start: {line!r}\n{tail}")
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_S):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def _readings(url: str) -> int:
    async with Store(url) as store, store.read() as conn:
        return int(
            await conn.scalar(select(func.count()).select_from(schema.telemetry_readings)) or 0
        )


# -- the cases -------------------------------------------------------------------------------


@dataclass(slots=True)
class Case:
    workers: int
    span: Span
    load: float

    def rate(self, size: int) -> float:
        return size / self.span.seconds


def _shares(size: int, parts: int) -> list[int]:
    return [size // parts + (1 if k < size % parts else 0) for k in range(parts) if k < size]


class Meters:
    """Hands out fresh meters: each phase's senders start with empty replay windows."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> int:
        first = self.next
        self.next += min(SENDERS_CAP, count)
        if self.next > REGISTRY:
            raise ValueError(f"more senders than the {REGISTRY:,}-meter registry holds")
        return first


async def _cases(size: int, workdir: Path, log: Callable[[str], None]) -> list[Case]:
    root = f"pintar-bench-{secrets.token_hex(5)}/v1"
    settings = MqttSettings(host=BROKER[0], port=BROKER[1], topics=Topics(root), session_expiry=60)
    master = MasterKey(secrets.token_bytes(32))
    config = _hub_config(workdir, root, master.key.hex())
    meters = Meters()
    cases: list[Case] = []
    gateways: list[str] = []
    stored = 0
    pids: list[int] = []
    began = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(pg_scratch())
        database = make_url(url).set(drivername="postgresql+asyncpg")
        database_url = database.render_as_string(hide_password=False)
        async with Store(database_url) as store:
            await store.migrate()
        plain = database.set(drivername="postgresql").render_as_string(hide_password=False)
        await fill_pg(plain, master, REGISTRY, 0)
        log(f"bench: {NAME}: scratch database ready ({time.perf_counter() - began:.1f} s)")
        observer = await stack.enter_async_context(Observer(settings))
        cpu = CpuMeter(pids, database.database or "")
        for workers in (1, 2):
            worker_id = f"bench-hub-{workers}"
            log(f"bench: {NAME}: starting worker {worker_id}")
            process = await stack.enter_async_context(
                _worker(config, worker_id, database_url, workdir / f"{worker_id}.log")
            )
            pids.append(process.pid)
            log(f"bench: {NAME}: {worker_id} ready ({time.perf_counter() - began:.1f} s)")
            warm = WARM_UP_PER_WORKER * workers
            name = f"gw-warm-{workers}"
            gateways.append(name)
            await _publish_and_wait(
                workdir, settings, observer, {name: _events(name, meters.take(warm), warm)}, cpu
            )
            loads: dict[str, list[InboundSms]] = {}
            for g, share in enumerate(_shares(size, GATEWAYS)):
                name = f"gw-bench-{workers}-{g}"
                loads[name] = _events(name, meters.take(share), share)
            gateways += loads
            log(f"bench: {NAME}: warm-up acked ({time.perf_counter() - began:.1f} s)")
            load = os.getloadavg()[0]
            span = await _publish_and_wait(workdir, settings, observer, loads, cpu)
            stored += warm + size
            found = await _readings(database_url)
            if found != stored:
                raise RuntimeError(f"{found} readings stored, expected {stored}")
            cases.append(Case(workers, span, load))
            log(f"bench: {NAME}: {workers} worker(s): {size / span.seconds:.1f} SMS/s")
        await observer.clear_status(gateways)
    return cases


async def measure(size: int, workdir: Path, log: Callable[[str], None]) -> Section:
    section = Section(NAME, TITLE, size, method=METHOD, notes=list(NOTES))
    missing = [
        what
        for what, up in (
            ("PostgreSQL at 127.0.0.1:5432", await postgres_up()),
            (f"Mosquitto at {BROKER[0]}:{BROKER[1]}", _broker_up()),
        )
        if not up
    ]
    if missing:
        section.notes.append(f"{' and '.join(missing)} not reachable: not measured.")
        return section
    one, two = await _cases(size, workdir, log)
    for case in (one, two):
        section.rows.append(
            Row(
                f"postgresql, {case.workers} hub worker{'s' if case.workers > 1 else ''}: "
                "throughput",
                case.rate(size),
                "SMS/s",
                detail=(
                    f"{size} SMS in {case.span.seconds:.2f} s (the gateways had published "
                    f"them all after {case.span.publishing:.2f} s); load average "
                    f"{case.load:.1f} when it started; {case.span.cpu.describe(size)}"
                ),
            )
        )
    section.rows.append(
        Row(
            "two workers ÷ one worker",
            two.rate(size) / one.rate(size),
            "×",
            detail="throughput ratio; on 2 shared cores, see the notes",
        )
    )
    return section


def run(size: int = DEFAULT_SIZE) -> Section:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-hub-workers-") as workdir:
        section = asyncio.run(
            measure(size, Path(workdir), lambda line: print(line, file=sys.stderr))
        )
    section.seconds = time.perf_counter() - started
    return section
