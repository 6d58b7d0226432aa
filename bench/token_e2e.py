"""Token end to end: purchase SMS in → P2APST simulator → token frame out → meter answer →
receipt out, at a steady offered rate, with the hub in process(es) of its own (`pintar
hub` wiring: MQTT bus to a `pintar gateway` process) and the simulated world (network, an
SMSC on it that the gateway binds to over SMPP or emulated modems, meters, phones, P2APST
simulator) in the benchmark's process; what the hub alone does per purchase: its share of
the time, its CPU, its SQL."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.hub_pipeline import PG_ADMIN, pg_scratch, postgres_up
from bench.hub_workers import _broker_pids, _machine_cpu, _process_cpu
from bench.report import REPO, Row, Section
from bench.rig import percentile
from gateway.mqtt.connection import MqttSettings
from gateway.mqtt.topics import Topics
from meter_sim.fleet import Fleet, FleetMember, build_members, registry_csv, sim_meters
from meter_sim.meter.state_store import StateStore
from meter_sim.modem_emulator import ModemEmulator, TimingProfile
from meter_sim.network import NetworkProfile, NetworkSmsc, SmsNetwork
from meter_sim.phones.inbox import NoticeKind, read_notice
from meter_sim.phones.phone import SimulatedPhone
from operator_data.registry import Registry
from operator_data.registry.csv_io import import_csv
from operator_data.settings import load_settings
from operator_data.store import Direction, Store, TransactionState, schema
from p2apst_adapter.dialect import Deframer, IsoError, Mti, decode, decode_bit48
from p2apst_adapter.simulator import P2apstSimulator

NAME = "token_e2e"
TITLE = "Token end to end (purchase SMS → P2APST → token frame → meter → receipt)"
#: Purchases offered at the target rate (0.8 s of it); the 50/s run offers half. The hub
#: sustains only a few purchases/s here, so a longer offer only lengthens the backlog (and
#: the latencies, linearly) while the run's time grows past two minutes.
DEFAULT_SIZE = 160
SMOKE_SIZE = 4
TARGET_RATE = 200.0  # purchases/s offered
LOW_RATE = 50.0
#: Well under what the hub sustains: its share with (almost) no queueing, for reference.
IDLE_RATE = 2.0
IDLE_COUNT = 10
TARGET_P99_MS = 50.0
#: The floor for resolving the purchase-pipeline issue: 100 purchases/s sustained (here for
#: FLOOR_SECONDS, on the first case only) with the hub's share p99 under FLOOR_P99_MS.
FLOOR_RATE = 100.0
FLOOR_SECONDS = 20.0
FLOOR_P99_MS = 100.0
SHORT_CODE = "87000"
FIRST_HUB_LINE = 6281100000001
MODEMS = 4
PIN = "1234"
AMOUNT = 50_000
WARM_UP = 3
#: How long a run may take to finish its purchases once all are offered (then it reports
#: what finished; the sweeper is off, so a purchase that went wrong would never finish).
DRAIN_S = 120.0
#: A run's measured window ends once its purchases are all reported to P2APST and the hub
#: process(es) then ran no SQL statement for this long (send results, delivery reports).
QUIET_S = 1.0
SETTLE_S = 60.0
BROKER = ("127.0.0.1", 1883)
READY_S = 60.0
STOP_S = 20.0
REPLY_S = 60.0
#: (backend, hub workers, gateway carrier): one worker on each backend, two sharing
#: PostgreSQL, all through an SMSC over SMPP (what an operator at these rates uses); once more
#: on SQLite through the emulated modems, the carrier every case used before 2026-12-04.
CASES: tuple[tuple[str, int, str], ...] = (
    ("sqlite", 1, "smpp"),
    ("sqlite", 1, "modems"),
    ("postgresql", 1, "smpp"),
    ("postgresql", 2, "smpp"),
)
#: The SMSC account of the gateway (system_id at most 15 characters, password at most 8).
SMPP_SYSTEM_ID = "bench-gw"
#: submit_sm outstanding at most: an operator's window, wide enough that at these rates the
#: link's round trips (to the world's process, which shares the cores) are not the limit.
SMPP_WINDOW = 32
GATEWAY = "bench-gw"
#: Not counted as statements in the rows: SQLite's BEGIN IMMEDIATE goes through the cursor,
#: PostgreSQL's begin does not (asyncpg's own call), so counting it would skew the backends.
CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})
#: Below this size (smoke runs) the one-worker PostgreSQL case is left out, nor profiled.
SMOKE_CASES_BELOW = 20

METHOD = f"""\
Three kinds of process, all on 127.0.0.1, wired as production runs them. **Hub**: each hub
worker is its own process (`python -m bench.token_e2e_hub`), which runs
`operator_data.hub.service.serve` — what `pintar hub` runs: `Store`, `Registry`,
`MqttTransport` on the local Mosquitto (a topic root unique to the run), `P2apstClient` with
the hub's purchase journal and report outbox, `Hub` — with the shipped settings except: PIN
length 4, the sweeper every hour (as before: timers are not part of a purchase), P2APST
echo every hour and a 60 s response timeout, log level WARNING (`pintar hub` defaults to
INFO). **Gateway**: one `pintar gateway` process (the CLI's command, run by
`bench.token_e2e_gateway` so that it also stops when the benchmark closes its stdin;
store-then-send, SQLite spool with synchronous=FULL, events re-delivered after 120 s) with
carrier `smpp` — an SMPP 3.4 transceiver link to the world's SMSC on 127.0.0.1 (window
{SMPP_WINDOW}, source address {SHORT_CODE}, long texts split with concatenation headers,
receipts matched through its SMSC-id book) — or, in the one case labelled `modems`, carrier
`modems` driving {MODEMS} emulated modems on ptys (`min_interval` 0). **World**: the
benchmark's own process — the simulated SMS network with no delivery delay; the endpoint
of the short code {SHORT_CODE} on it is either the SMSC (`meter_sim.network.NetworkSmsc`:
the gateway's `SmscSimulator` bridged onto the network: what reaches the short code goes
to the gateway as MO deliver_sm, each submit_sm goes on as a network SMS, binary frames as
data and texts as text, and the network's status report comes back as the delivery
receipt) or the {MODEMS} `ModemEmulator`s (`fast` timing profile: no send delay); the
`meter_sim` meters and phones (`Fleet`) and the `P2apstSimulator` on a TCP port. Why
SMPP: at 50-200 purchases/s a real operator uses an SMSC (a GSM modem sends a few SMS a
minute), and the AT-over-pty path cost the gateway ~7.5 ms and the world ~3.5 ms of CPU per
purchase on this 2-core machine, CPU taken from the hub it is meant to measure. Cases:
SQLite (a file database with the Store's defaults: WAL, synchronous=FULL) with one hub
worker, over SMPP and over modems; PostgreSQL (a scratch database on 127.0.0.1:5432,
created for the case and dropped after it; server defaults) with one worker, then with two
workers sharing the events through `$share/hub/...` (each its own P2APST connection and
STAN lane), over SMPP. Each case starts
from an empty, migrated database: the registry (customers, meters with comms keys, SIMs,
phones) is imported from the fleet's CSV with the registry's import and every phone's PIN
is set with `Registry.set_pin` (setup, not timed); then {WARM_UP} warm-up purchases. Open
loop: purchases are offered at a steady rate (`BELI 50000 <PIN>`), each from a distinct
phone for a distinct meter, so nothing is refused as a duplicate; a rate's run ends when
every phone has its receipt. The rates 2, 50 and 200/s are short runs (the size's
purchases); the first case also runs {FLOOR_RATE:.0f}/s for {FLOOR_SECONDS:.0f} s
({FLOOR_RATE * FLOOR_SECONDS:.0f} purchases), the purchase-pipeline issue's floor
(sustained, hub share p99 < {FLOOR_P99_MS:.0f} ms).

The hub's own share of a purchase is measured at the hub process's two boundaries, with
wall-clock stamps taken inside it: the MQTT transport (a subclass of `MqttTransport` that
only records) notes when the hub takes each inbound SMS from it and when the hub hands each
SMS to `send()`; the P2APST client reaches the simulator through a TCP pass-through in the
hub process, which forwards each chunk and notes its time (the ISO 8583 frames are decoded
by the benchmark afterwards, so they cost the hub nothing). Share = (customer SMS taken by
the hub → 2200 on the wire, minus the 2100/2110 inquiry's round trip) + (2210 back → token
frame handed to `send()`) + (meter's TOKEN_RESULT taken by the hub → receipt handed to
`send()`), the same definition as when everything shared one process. Excluded: the
simulator's and the TCP time between request and answer, and the bus/gateway/SMSC or
modem/network time between `send()` and the next inbound SMS. Included (it is the hub's): PIN
verification, the P2APST client's journal writes, every database wait, and time queued in
the hub. End to end = the phone's purchase SMS submitted → its receipt in the phone's inbox.
The same share from the store's state stamps alone is given in a note (it misses the time an
event waits inside the hub before its batch stamps RECEIVED, and the store has no stamp for
the inquiry). Achieved = purchases finished / (first purchase SMS submitted → last receipt).

Per purchase, over each rate's measured window (from its first offer until all its
purchases are reported to P2APST and the hub process(es) have run no SQL for {QUIET_S:.0f} s,
so the send results, delivery reports and report acknowledgements are in): **hub CPU** =
user + system CPU of the hub process(es), every thread (`resource.getrusage` inside each
process), ÷ purchases offered; **SQL statements** and **transactions** = statements seen by
a SQLAlchemy `before_cursor_execute` listener and commits seen by a `commit` listener in the
hub process(es), ÷ purchases offered. The tap's forwarding and the replies to the
benchmark's few control lines (stdin/stdout) are in the hub's CPU; both are small. The
other processes' CPU (gateway, world, broker, PostgreSQL backends of the scratch database,
from /proc) is given in each row's detail: they share the machine's cores with the hub."""

NOTES = [
    "Earlier figures of this benchmark (hub and gateway in processes of their own, same "
    "machine class; 200 purchases/s offered unless said). Commit 9c7d097 (before the "
    "set-wise send outcomes, customer SMS, meter answers and paid answers, and before SQLite "
    "group commit; load 7-8): SQLite, one worker: 10.2 purchases/s at 50/s and at 200/s, "
    "hub share p99 6.5 s / 14.4 s, 62-64 ms hub CPU, 73-75 statements and 16 commits per "
    "purchase; PostgreSQL: one worker 4.1/s, two workers 6.0/s. Commit 1274de8 (send "
    "outcomes set-wise; load about 1): SQLite, one worker: 21.5/s at 50/s and 23.2/s at "
    "200/s, 38-41 ms CPU, 55-59 statements and 15.7-16.9 commits per purchase, hub share p99 "
    "6.0 s at 200/s; PostgreSQL: one worker 22.6/s at 50/s and 25.2/s at 200/s (34-37 ms), "
    "two workers 19.5/s at 50/s (51 ms). Commit 7cc6c6c (with SQLite group commit): SQLite "
    "21.9/s and 24.3/s, 40-45 ms, 69 statements (SAVEPOINT/RELEASE added) and 9.7 commits "
    "per purchase. Commit 4888dc9 (customer SMS, meter answers and paid answers set-wise "
    "too): SQLite 30.3/s at 50/s and 43.4/s at 200/s, 21-29 ms, 30.6 statements and 5.8 "
    "commits per purchase at 200/s, hub share p99 2.3 s; PostgreSQL one worker 27.0/s and "
    "38.6/s, two workers 16.9/s and 33.7/s. Commit b7157b6 (the 2200's journal entry "
    "moves the purchase to SUBMITTED; reports recorded once): SQLite 32.8/s and 49.2/s, "
    "19-27 ms, 24.8 statements and 4.0 commits per purchase at 200/s, hub share p99 2.0 s; "
    "PostgreSQL one worker 29.3/s and 41.4/s, two workers 17.5/s and 37.0/s. Commit "
    "1f008a4 (a new purchase handed to its driver in hand): SQLite 47.9/s at 200/s, 18 ms, "
    "22.6 statements and 2.9 commits per purchase, hub share p99 2.0 s; PostgreSQL one "
    "worker 40.6/s, two workers 28.6/s. Commit 5b150e1 (journal, reports and customer "
    "SMS set-wise, multi-row INSERTs without per-value compile): SQLite 66.2/s, 10.5 ms, "
    "10.0 statements and 1.5 commits per purchase, hub share p99 1.1 s; PostgreSQL one "
    "worker 49.7/s (13.6 ms), two workers 29.0/s (30 ms); a second run of that code: "
    "SQLite 64.2/s, 11 ms. With gateway events batched on the bus (7fcfc0b, "
    "events_per_message 64): SQLite 53.5/s (14 ms), PostgreSQL 36.2/s and 35.3/s; the same "
    "code with batches off (the default) then gave SQLite 43.2/s (17 ms) and PostgreSQL "
    "33.1/s: this machine's throughput drifted by a third within the session, more than "
    "any difference between those two. "
    "The in-process version of this benchmark "
    "(until 2026-12-02, figures of hub and world together) measured 4-6 purchases/s.",
    "Before 2026-12-02 this benchmark ran the hub, the modem pool, the emulated modems, the "
    "meters, phones and the P2APST simulator in one process and event loop, so the hub's "
    "figures included the world's CPU (a few ms per purchase) and its scheduling delays; "
    "the figures below are of the hub process alone, but the processes still share the "
    "machine's cores, so the world's and gateway's work still competes with the hub for CPU.",
    "On this machine the hub workers share the cores with the gateway, the world, "
    "Mosquitto and PostgreSQL (and with other people's work: see each row's busy share and "
    "load average), so a second hub worker has no core of its own and the achieved rate "
    "with two workers says little about scaling; the CPU per purchase (summed over the "
    "workers) shows what a second worker costs.",
    "Since 2026-12-04 the gateway reaches the world through an SMSC over SMPP (carrier "
    "`smpp`, the world's `NetworkSmsc`) and each row names its carrier; every figure quoted "
    "above, and the rows before that date (labelled without a carrier), went through the "
    "emulated modems (AT commands over ptys), as the `modems` case still does. What changed "
    "is the gateway's and the world's work per purchase (no AT dialogue, PDU encoding or "
    "pty I/O; SMPP PDUs over one TCP connection instead), and so the CPU left for the hub "
    "on the shared cores; the hub's own work and every measurement definition are the same. "
    "The first run of both (2026-12-04, one after the other, 200/s offered, SQLite, one "
    "worker): over SMPP 67.0 purchases/s, per purchase 9.1 ms hub, 4.2 ms gateway and 1.9 ms "
    "world CPU; over modems 50.4/s, 9.8 ms hub, 8.1 ms gateway, 3.8 ms world (both on a "
    "machine 74-100 % busy with other work).",
    "Figures of 2026-12-04 before this run, same machine class. At the start of the day "
    "(36f8685, modems only, quiet machine, load 0.9): SQLite, one worker, 34.3/s at 50/s and "
    "55.5/s at 200/s (160 purchases), 14.0 ms hub CPU, 16.9 statements and 2.85 commits per "
    "purchase, hub share p99 738 ms; PostgreSQL one worker 52.1/s (13.0 ms), two workers "
    "26.9/s (36 ms). Since then: bus batches on by default both ways (a gateway's waiting "
    "events and a dispatch round's sends, 32 per MQTT message: hub CPU at 100/s 8.9-9.3 ms "
    "with events alone, 7.7-8.1 ms batched, broker CPU halved), a read unit wholly on the "
    "event loop (deferred BEGIN and its COMMIT inline: 399 to 173 µs of CPU per read "
    "unit), BEGIN IMMEDIATE inline when the write lock is free, a token's key and SIM in "
    "one statement, and the gateway over SMPP.",
    "Where the hub's time goes at low rates (the reason the sustained run queues): at 2/s "
    "every purchase's stages run alone, 135 statements in 27 transactions (17 write units "
    "and 10 read units) per purchase; at 30/s 68 statements and 8.8 transactions; at 100/s "
    "17.5 and 2.2. A purchase's five SMS each move through their own units (logged, "
    "claimed by the dispatcher, handed over, send result, status report: each a SELECT, "
    "an UPDATE of messages, a message_states INSERT and outbox and cost-ledger writes), so "
    "the hub only keeps up at 100/s by letting batches grow, which is queueing: hub share "
    "p50 about 130-150 ms per segment. The hub's CPU at the sustained 100/s is 86 % of one "
    "core.",
    "PIN verification is part of the hub's CPU per purchase, with whatever hashing the "
    "registry uses at the time (each case's last note names the scheme of the stored "
    "hashes): scrypt (n = 2^14, r = 8) took ~45-90 ms of CPU per purchase on these "
    "machines, a keyed HMAC (`hmac1`) microseconds.",
    "SQL statements are counted by their first keyword; the rows leave BEGIN out (on SQLite "
    "the Store's BEGIN IMMEDIATE is a statement through the cursor, on PostgreSQL asyncpg "
    "begins a transaction without one), the notes list every kind. Transactions are the "
    "commits SQLAlchemy saw: every unit of work, the Store's read-only ones included (they "
    "commit too); units rolled back are not counted.",
]


# -- the hub worker processes ----------------------------------------------------------------


class HubWorker:
    """A `bench.token_e2e_hub` process and its command channel (JSON lines on stdio)."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    async def call(self, command: str) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps({"cmd": command}).encode() + b"\n")
        await stdin.drain()
        async with asyncio.timeout(REPLY_S):
            line = await stdout.readline()
        if not line:
            raise RuntimeError(f"hub worker {self.name} died: {self.tail()}")
        reply: dict[str, Any] = json.loads(line)
        if reply.get("reply") != command:
            raise RuntimeError(f"hub worker {self.name}: {command!r} answered {line[:200]!r}")
        return reply

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


@asynccontextmanager
async def hub_worker(
    name: str, config: Path, env: dict[str, str], log: Path
) -> AsyncIterator[HubWorker]:
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.token_e2e_hub",
            "--config",
            str(config),
            "--worker-id",
            name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=REPO,
            limit=1 << 26,  # the stamps come back as one line
        )
    worker = HubWorker(name, process, log)
    try:
        assert process.stdout is not None
        try:
            async with asyncio.timeout(READY_S):
                line = await process.stdout.readline()
        except TimeoutError:
            line = b""
        if b'"status": "ready"' not in line:
            raise RuntimeError(f"hub worker {name} did not start: {line!r}\n{worker.tail()}")
        yield worker
    finally:
        await _stop(process, polite=worker)


@asynccontextmanager
async def gateway_process(
    config: Path, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A `pintar gateway` process (through bench.token_e2e_gateway), yielded once it
    reached the broker."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.token_e2e_gateway",  # `pintar gateway`, also stopped by EOF on stdin
            "--config",
            str(config),
            stdin=asyncio.subprocess.PIPE,  # closed when this process ends
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=REPO,
        )
    try:
        assert process.stdout is not None
        try:
            async with asyncio.timeout(READY_S):
                line = await process.stdout.readline()
        except TimeoutError:
            line = b""
        if b'"status": "connected"' not in line:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"gateway did not start: {line!r}\n{tail}")
        yield process
    finally:
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process, polite: HubWorker | None = None) -> None:
    if process.returncode is None and polite is not None:
        with contextlib.suppress(Exception):
            await polite.call("stop")
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_S):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# -- what the hub processes recorded -----------------------------------------------------------


@dataclass(slots=True)
class Exchange:
    sent: float
    answered: float


@dataclass(slots=True)
class Stamps:
    """The hub processes' stamps, merged; P2APST frames decoded here, in the world."""

    handed_in: dict[str, float] = field(default_factory=dict)
    handed_out: dict[str, float] = field(default_factory=dict)
    inquiries: dict[str, Exchange] = field(default_factory=dict)  # by meter number
    purchases: dict[str, Exchange] = field(default_factory=dict)
    _deframers: dict[tuple[str, int, bool], Deframer] = field(default_factory=dict)
    _open: dict[tuple[str, int, str], tuple[str, str, float]] = field(default_factory=dict)

    WATCHED = frozenset({Mti.INQUIRY_REQUEST.value, Mti.PURCHASE_REQUEST.value})

    def add(self, worker: str, document: dict[str, Any]) -> None:
        for key, at in document["handed_in"].items():
            self.handed_in.setdefault(key, at)
        for key, at in document["handed_out"].items():
            self.handed_out.setdefault(key, at)
        for conn, outbound, at, data in document["p2apst"]:
            deframer = self._deframers.setdefault((worker, conn, outbound), Deframer())
            try:
                frames = deframer.feed(base64.b64decode(data))
            except IsoError:
                continue
            for raw in frames:
                self._seen(worker, conn, raw, at, outbound)

    def _seen(self, worker: str, conn: int, raw: bytes, at: float, outbound: bool) -> None:
        try:
            message = decode(raw)
        except IsoError:
            return
        stan = message.stan or ""
        if outbound and message.mti in self.WATCHED:
            meter = str(decode_bit48(message.mti, message.require(48))["meter_number"])
            self._open[(worker, conn, stan)] = (message.mti, meter, at)
        elif not outbound and (worker, conn, stan) in self._open:
            mti, meter, sent = self._open.pop((worker, conn, stan))
            book = self.inquiries if mti == Mti.INQUIRY_REQUEST.value else self.purchases
            book.setdefault(meter, Exchange(sent, at))


@dataclass(frozen=True, slots=True)
class Snapshot:
    cpu: float
    statements: Counter[str]
    commits: int

    @classmethod
    def of(cls, replies: Sequence[dict[str, Any]]) -> list[Snapshot]:
        return [cls(r["cpu"], Counter(r["statements"]), int(r["commits"])) for r in replies]


# -- CPU of the other processes ----------------------------------------------------------------


async def _backend_pids(database: str | None) -> set[int]:
    if database is None:
        return set()
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    finally:
        await conn.close()
    return {int(row["pid"]) for row in rows}


@dataclass(slots=True)
class Others:
    """CPU seconds of everything but the hub over a window, from /proc."""

    gateway: float = 0.0
    world: float = 0.0
    broker: float = 0.0
    postgres: float = 0.0
    busy: float = 0.0  # share of the machine's CPU time that was busy (everyone's work)


class OthersMeter:
    def __init__(self, gateway: int, database: str | None) -> None:
        self._gateway = gateway
        self._database = database
        self._broker = _broker_pids()
        self._start: dict[int, float] = {}
        self._backends: set[int] = set()
        self._world = 0.0
        self._machine = (0.0, 0.0)

    def _sample(self, pids: set[int]) -> dict[int, float]:
        return {pid: cpu for pid in pids if (cpu := _process_cpu(pid)) is not None}

    async def start(self) -> None:
        self._backends = await _backend_pids(self._database)
        self._start = self._sample({self._gateway, *self._broker, *self._backends})
        self._world = time.process_time()
        self._machine = _machine_cpu()

    async def stop(self) -> Others:
        machine = _machine_cpu()
        world = time.process_time() - self._world
        self._backends |= await _backend_pids(self._database)
        now = self._sample({self._gateway, *self._broker, *self._backends})

        def used(pid: int) -> float:
            return now.get(pid, self._start.get(pid, 0.0)) - self._start.get(pid, 0.0)

        total = machine[1] - self._machine[1]
        return Others(
            gateway=used(self._gateway),
            world=world,
            broker=sum(used(pid) for pid in self._broker),
            postgres=sum(used(pid) for pid in self._backends),
            busy=(machine[0] - self._machine[0]) / total if total > 0 else 0.0,
        )


# -- the world -------------------------------------------------------------------------------


@dataclass(slots=True)
class World:
    backend: str
    carrier: str  # the gateway's: "smpp" or "modems"
    store: Store
    hubs: list[HubWorker]
    gateway: asyncio.subprocess.Process
    fleet: Fleet
    members: list[FleetMember]
    database: str | None  # the PostgreSQL database's name
    pin_scheme: str = ""
    stamps: Stamps = field(default_factory=Stamps)

    @property
    def label(self) -> str:
        workers = len(self.hubs)
        return f"{self.backend}, {workers} hub worker{'s' if workers > 1 else ''}, {self.carrier}"


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def _hub_config(casedir: Path, root: str, p2apst_port: int, workers: int) -> Path:
    key = casedir / "master.key"
    _write_secret(key, secrets.token_hex(32))
    path = casedir / "hub.toml"
    path.write_text(
        f'data_dir = "{casedir / "hub-data"}"\n'
        f'[service]\nshort_code = "{SHORT_CODE}"\n'
        f"[pin]\nlength = {len(PIN)}\n"
        "[hub]\nsweep_interval_s = 3600.0\n"
        f'[security]\nmaster_key_file = "{key}"\n'
        f'[mqtt]\nhost = "{BROKER[0]}"\nport = {BROKER[1]}\ntopic_root = "{root}"\n'
        "max_backoff = 1.0\n"
        f'[p2apst]\nhost = "127.0.0.1"\nport = {p2apst_port}\n'
        f"response_timeout = 60.0\necho_interval = 3600.0\nstan_lanes = {workers}\n",
        encoding="utf-8",
    )
    return path


def _modems_carrier(ports: Sequence[str]) -> tuple[str, str]:
    """The gateway config's carrier part for the emulated modems."""
    modems = "".join(
        f'[[modems]]\nport = "{port}"\nname = "modem{n + 1}"\n' for n, port in enumerate(ports)
    )
    return 'carrier = "modems"\n', "[pool]\nmin_interval = 0.0\nretry_delay = 1.0\n" + modems


def _smpp_carrier(port: int, password_file: Path) -> tuple[str, str]:
    """The gateway config's carrier part for the world's SMSC (the password from a file:
    the gateway takes none from its TOML)."""
    return 'carrier = "smpp"\n', (
        f'[smpp]\nhost = "127.0.0.1"\nport = {port}\nsystem_id = "{SMPP_SYSTEM_ID}"\n'
        f'password_file = "{password_file}"\nsource_addr = "{SHORT_CODE}"\n'
        f"window = {SMPP_WINDOW}\n"
    )


def _gateway_config(casedir: Path, root: str, carrier: tuple[str, str]) -> Path:
    """`carrier`: the top-level carrier line and its sections (`_modems_carrier`,
    `_smpp_carrier`)."""
    path = casedir / "gateway.toml"
    choice, sections = carrier
    path.write_text(
        f'name = "{GATEWAY}"\n'
        f'spool_path = "{casedir / "gateway" / "spool.db"}"\n' + choice + 'log_level = "WARNING"\n'
        # Longer than any run here: a backlog in the hub is not published twice.
        "redeliver_after = 120.0\n"
        f'[mqtt]\nhost = "{BROKER[0]}"\nport = {BROKER[1]}\ntopic_root = "{root}"\n'
        "session_expiry = 60\nmax_backoff = 1.0\n" + sections,
        encoding="utf-8",
    )
    return path


def _environment(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINTAR_")}
    env["PINTAR_DATABASE__URL"] = database_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


async def _provision(config: Path, url: str, store: Store, members: Sequence[FleetMember]) -> None:
    """The fleet's CSV through the registry's import; each phone's PIN through the registry
    (whatever hashing it uses), a few at a time."""
    settings = load_settings(config, database={"url": url})
    registry = Registry(
        store, master_key=settings.security.load_master_key(), pin_policy=settings.pin
    )
    await import_csv(registry, io.StringIO(registry_csv(members)))
    gate = asyncio.Semaphore(4)

    async def one(member: FleetMember) -> None:
        async with gate:
            await registry.set_pin(member.phone_msisdn, PIN, actor="bench")

    await asyncio.gather(*(one(m) for m in members))


async def _pin_scheme(store: Store) -> str:
    """The scheme of the PIN hashes the registry stored ("scrypt", "hmac1", ...)."""
    phones = schema.customer_phones
    async with store.read() as conn:
        stored = await conn.scalar(select(phones.c.pin_hash).where(phones.c.pin_hash.is_not(None)))
    return str(stored or "none").split("$", 1)[0]


async def _clear_status(root: str) -> None:
    """The gateway's retained status off the shared broker."""
    settings = MqttSettings(host=BROKER[0], port=BROKER[1], topics=Topics(root))
    with contextlib.suppress(Exception):
        async with (
            asyncio.timeout(10),
            settings.client(f"bench-clean-{secrets.token_hex(4)}", persistent=False) as client,
        ):
            await client.publish(Topics(root).status(GATEWAY), b"", qos=1, retain=True)


@asynccontextmanager
async def build_world(
    backend: str,
    workers: int,
    carrier: str,
    casedir: Path,
    meters: int,
    log: Callable[[str], None],
) -> AsyncIterator[World]:
    casedir.mkdir(parents=True, exist_ok=True)
    members = [
        dataclasses.replace(m, pin=PIN)
        for m in build_members(meters, seed=7, hub_msisdn=SHORT_CODE)
    ]
    run_id = secrets.token_hex(5)
    root = f"pintar-bench-{run_id}/v1"
    began = time.perf_counter()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(_clear_status, root)
        database: str | None = None
        if backend == "postgresql":
            plain = make_url(await stack.enter_async_context(pg_scratch()))
            database = plain.database
            url = plain.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        else:
            url = f"sqlite+aiosqlite:///{casedir / 'hub.db'}"
        network = await stack.enter_async_context(SmsNetwork(NetworkProfile(), seed=7))
        if carrier == "smpp":
            # The SMSC is the short code's endpoint: no lines behind it, no alias.
            password = secrets.token_hex(4)
            smsc = await stack.enter_async_context(
                NetworkSmsc(network, SHORT_CODE, system_id=SMPP_SYSTEM_ID, password=password)
            )
            _write_secret(casedir / "smpp.password", password)
            gateway_carrier = _smpp_carrier(smsc.port, casedir / "smpp.password")
        elif carrier == "modems":
            emulators = [
                await stack.enter_async_context(
                    ModemEmulator(
                        network, f"+{FIRST_HUB_LINE + n}", timing=TimingProfile.FAST, sim_slots=50
                    )
                )
                for n in range(MODEMS)
            ]
            network.alias(SHORT_CODE, [e.msisdn for e in emulators], present_as_alias=True)
            gateway_carrier = _modems_carrier([e.device_path for e in emulators])
        else:
            raise ValueError(f"carrier {carrier!r}: expected 'smpp' or 'modems'")
        simulator = await stack.enter_async_context(P2apstSimulator(sim_meters(members), seed=7))
        config = _hub_config(casedir, root, simulator.port, workers)
        store = await stack.enter_async_context(Store(url))
        await store.migrate()
        await _provision(config, url, store, members)
        log(f"bench: {NAME}: {backend}: registry ready ({time.perf_counter() - began:.1f} s)")
        # The hub worker(s) and the gateway start at once (each waits for its ready line).
        hub_cms = [
            hub_worker(
                # Unique per run: the hub's MQTT client id is `pintar-hub-<worker>`, and two
                # runs on one broker with the same ids would take each other's sessions.
                f"bench-hub-{k}-{run_id}",
                config,
                _environment(url, PINTAR_P2APST__STAN_LANE=str(k)),
                casedir / f"hub-{k}.log",
            )
            for k in range(workers)
        ]
        gateway_cm = gateway_process(
            _gateway_config(casedir, root, gateway_carrier),
            _environment(url),
            casedir / "gateway.log",
        )
        started = await asyncio.gather(
            *(stack.enter_async_context(cm) for cm in (*hub_cms, gateway_cm)),
            return_exceptions=True,
        )
        for result in started:
            if isinstance(result, BaseException):
                raise result
        hubs = [h for h in started if isinstance(h, HubWorker)]
        gateway = started[-1]
        assert isinstance(gateway, asyncio.subprocess.Process)
        meter_state = stack.enter_context(StateStore(casedir / "meters.db"))
        fleet = await stack.enter_async_context(
            Fleet(members, network, meter_state, clock=_utc_now, short_code=SHORT_CODE, seed=7)
        )
        log(f"bench: {NAME}: {backend}: {workers} hub worker(s) and the gateway ({carrier}) up")
        yield World(
            backend,
            carrier,
            store,
            hubs,
            gateway,
            fleet,
            members,
            database,
            await _pin_scheme(store),
        )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- a run -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    label: str
    rate: float
    offered: int
    offer_seconds: float
    finished: int = 0
    seconds: float = 0.0
    window: float = 0.0  # the measured window: first offer → hub quiet
    hub_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    store_ms: list[float] = field(default_factory=list)
    outside_ms: list[float] = field(default_factory=list)
    segments_ms: dict[str, list[float]] = field(default_factory=dict)
    hub_cpu: list[float] = field(default_factory=list)  # seconds, per worker
    statements: Counter[str] = field(default_factory=Counter)
    commits: int = 0
    others: Others = field(default_factory=Others)
    load: float = 0.0

    @property
    def achieved(self) -> float:
        return self.finished / self.seconds if self.seconds > 0 else 0.0

    def per_purchase(self, value: float) -> float:
        return value / self.offered if self.offered else 0.0


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

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await every()


async def _snapshots(world: World) -> list[Snapshot]:
    return Snapshot.of([await hub.call("snapshot") for hub in world.hubs])


async def _settle(world: World, phones: Sequence[SimulatedPhone]) -> list[Snapshot]:
    """Once the run's purchases are reported (or SETTLE_S passed), waits until the hub
    processes ran no statement for QUIET_S; their snapshots then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    numbers = [p.msisdn for p in phones]
    txs = schema.transactions
    while loop.time() < deadline:
        async with world.store.read() as conn:
            open_ = await conn.scalar(
                select(func.count())
                .select_from(txs)
                .where(
                    txs.c.phone_msisdn.in_(numbers),
                    txs.c.state != TransactionState.REPORTED.value,
                )
            )
        if not open_:
            break
        await asyncio.sleep(0.25)
    last: int | None = None
    quiet_since = loop.time()
    while True:
        snaps = await _snapshots(world)
        total = sum(sum(s.statements.values()) for s in snaps)
        now = loop.time()
        if total != last:
            last, quiet_since = total, now
        elif now - quiet_since >= QUIET_S or now > deadline:
            return snaps
        await asyncio.sleep(0.2)


async def _run(
    world: World, phones: Sequence[SimulatedPhone], rate: float, *, measured: bool = True
) -> Outcome:
    load = os.getloadavg()[0]
    others = OthersMeter(world.gateway.pid, world.database)
    await others.start()
    before = await _snapshots(world)
    started = time.perf_counter()
    offer_seconds = await _offer(phones, rate)
    await _wait_receipts(phones, DRAIN_S)
    after = await _settle(world, phones)
    window = time.perf_counter() - started
    outcome = Outcome(world.label, rate, len(phones), offer_seconds, window=window, load=load)
    outcome.others = await others.stop()
    outcome.hub_cpu = [b.cpu - a.cpu for a, b in zip(before, after, strict=True)]
    for a, b in zip(before, after, strict=True):
        outcome.statements += b.statements - a.statements
        outcome.commits += b.commits - a.commits
    for hub in world.hubs:
        world.stamps.add(hub.name, await hub.call("stamps"))
    if measured:
        await _measure(world, phones, outcome)
    return outcome


async def _measure(world: World, phones: Sequence[SimulatedPhone], outcome: Outcome) -> None:
    """Joins the hub processes' stamps to the purchases through the store's rows."""
    by_phone = {p.msisdn: p for p in phones}
    msgs, txs, states = schema.messages, schema.transactions, schema.message_states
    tstates = schema.transaction_states
    async with world.store.read() as conn:
        tx_rows = [
            r
            for r in await conn.execute(
                select(
                    txs.c.id, txs.c.phone_msisdn, txs.c.meter_number, txs.c.request_message_id
                ).where(txs.c.phone_msisdn.in_(list(by_phone)))
            )
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
    stamps = world.stamps
    handed_in, handed_out = stamps.handed_in, stamps.handed_out
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
        inquiry = stamps.inquiries.get(r.meter_number)
        purchase = stamps.purchases.get(r.meter_number)
        customer_in = handed_in.get(keys.get(r.request_message_id, "").removeprefix("sms:"))
        answer_in = handed_in.get((answer_key or "").removeprefix("sms:"))
        if (
            done is None
            or token_id is None
            or receipt_id is None
            or inquiry is None
            or purchase is None
            or customer_in is None
            or answer_in is None
            or token_id not in handed_out
            or receipt_id not in handed_out
        ):
            continue
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
        with contextlib.suppress(KeyError):
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


async def _breaches(store: Store) -> int:
    async with store.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(schema.sla_events)) or 0)


# -- the section -----------------------------------------------------------------------------


def _ms(values: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
    return p50, p95, p99


def _rows(outcome: Outcome) -> list[Row]:
    label = f"{outcome.label}: {outcome.rate:.0f} purchases/s offered"
    hub = _ms(outcome.hub_ms)
    total = _ms(outcome.total_ms)
    target, passed = "", None
    if outcome.rate == TARGET_RATE:
        target = f"p99 < {TARGET_P99_MS:.0f} ms at {TARGET_RATE:.0f}/s"
        passed = hub[2] < TARGET_P99_MS and outcome.achieved >= 0.95 * TARGET_RATE
    elif outcome.rate == FLOOR_RATE:
        label += f" for {outcome.offer_seconds:.0f} s"
        target = f"p99 < {FLOOR_P99_MS:.0f} ms at {FLOOR_RATE:.0f}/s sustained"
        passed = hub[2] < FLOOR_P99_MS and outcome.achieved >= 0.95 * FLOOR_RATE
    judged = passed is not None
    cpu = outcome.per_purchase(sum(outcome.hub_cpu)) * 1000
    statements = outcome.per_purchase(
        sum(n for verb, n in outcome.statements.items() if verb not in CONTROL)
    )
    commits = outcome.per_purchase(outcome.commits)
    o = outcome.others
    workers = " + ".join(f"{c:.2f}" for c in outcome.hub_cpu)
    detail = (
        f"{outcome.offered} offered in {outcome.offer_seconds:.2f} s, {outcome.finished} "
        f"finished in {outcome.seconds:.2f} s; hub share p50 {hub[0]:.0f} / p95 {hub[1]:.0f} / "
        f"p99 {hub[2]:.0f} ms; end to end p50 {total[0]:.0f} / p95 {total[1]:.0f} / "
        f"p99 {total[2]:.0f} ms; measured window {outcome.window:.1f} s: CPU seconds hub "
        f"{workers}, gateway {o.gateway:.2f}, world {o.world:.2f}, broker {o.broker:.2f}"
        + (f", PostgreSQL backends ≥ {o.postgres:.2f}" if outcome.label.startswith("post") else "")
        + f"; the machine's {os.cpu_count()} cores {o.busy:.0%} busy; load average "
        f"{outcome.load:.1f} when it started"
    )
    return [
        Row(f"{label}: achieved", outcome.achieved, "purchases/s", "", None, detail),
        Row(f"{label}: hub share p50", hub[0], "ms"),
        Row(f"{label}: hub share p95", hub[1], "ms"),
        Row(f"{label}: hub share p99", hub[2], "ms", target if judged else "", passed),
        Row(f"{label}: end to end p50", total[0], "ms"),
        Row(f"{label}: end to end p99", total[2], "ms"),
        Row(f"{label}: hub CPU per purchase", cpu, "ms"),
        Row(f"{label}: SQL statements per purchase (BEGIN not counted)", statements, "statements"),
        Row(f"{label}: transactions per purchase", commits, "commits"),
    ]


def _breakdown(outcome: Outcome) -> str:
    parts = ", ".join(
        f"{name} p50 {_ms(values)[0]:.0f} / p99 {_ms(values)[2]:.0f} ms"
        for name, values in outcome.segments_ms.items()
    )
    store = _ms(outcome.store_ms)
    outside = _ms(outcome.outside_ms)
    verbs = ", ".join(
        f"{verb} {count / outcome.offered:.1f}"
        for verb, count in outcome.statements.most_common()
        if outcome.offered
    )
    return (
        f"{outcome.label}, {outcome.rate:.0f}/s: hub share by segment: {parts}. Outside the "
        f"hub (P2APST round trips, bus, gateway, SMSC or modems, network, phone and meter): p50 "
        f"{outside[0]:.0f} / p99 {outside[2]:.0f} ms. The same hub share from the store's "
        f"state stamps alone: p50 {store[0]:.0f} / p95 {store[1]:.0f} / p99 {store[2]:.0f} ms. "
        f"Statements per purchase by kind: {verbs}."
    )


def _plan(size: int, *, sustained: bool = False) -> tuple[tuple[float, int], ...]:
    steps = (
        (IDLE_RATE, min(IDLE_COUNT, max(3, size // 2))),
        (LOW_RATE, max(3, size // 2)),
        (TARGET_RATE, size),
    )
    if sustained:
        steps += ((FLOOR_RATE, round(FLOOR_RATE * FLOOR_SECONDS)),)
    return steps


async def _case(
    section: Section,
    backend: str,
    workers: int,
    carrier: str,
    size: int,
    casedir: Path,
    log: Callable[[str], None],
    *,
    profiled: int,
) -> None:
    # The sustained floor run on the first case (the profiled one) at full sizes only.
    plan = _plan(size, sustained=profiled > 0)
    meters = WARM_UP + sum(c for _, c in plan) + profiled
    async with build_world(backend, workers, carrier, casedir, meters, log) as world:
        phones = world.fleet.phones
        await _run(world, phones[:WARM_UP], LOW_RATE, measured=False)
        first = WARM_UP
        outcomes: list[Outcome] = []
        for rate, count in plan:
            outcome = await _run(world, phones[first : first + count], rate)
            first += count
            outcomes.append(outcome)
            log(
                f"bench: {NAME}: {world.label}, {rate:.0f}/s: {outcome.achieved:.1f} "
                f"purchases/s, {outcome.per_purchase(sum(outcome.hub_cpu)) * 1000:.0f} ms "
                "hub CPU per purchase"
            )
        if profiled:
            # The same load once more under pyinstrument in the hub process (not measured).
            for hub in world.hubs:
                await hub.call("profile_start")
            await _run(world, phones[first : first + profiled], TARGET_RATE, measured=False)
            summaries = [(await hub.call("profile_stop"))["summary"] for hub in world.hubs]
            section.notes.append(
                f"{world.label}: profile of the hub process over {profiled} more purchases "
                f"offered at {TARGET_RATE:.0f}/s (this run, not one of the measured ones): "
                + " ".join(summaries)
            )
        breaches = await _breaches(world.store)
        pin_scheme = world.pin_scheme
    for outcome in outcomes:
        section.rows += _rows(outcome)
        section.notes.append(_breakdown(outcome))
        if outcome.finished < outcome.offered:
            section.notes.append(
                f"{outcome.label}, {outcome.rate:.0f}/s: only {outcome.finished} of "
                f"{outcome.offered} purchases finished within {DRAIN_S:.0f} s of the last offer."
            )
    target = next((o for o in outcomes if o.rate == TARGET_RATE), None)
    if target is not None and target.hub_cpu and sum(target.hub_cpu) > 0:
        cpu_ms = target.per_purchase(sum(target.hub_cpu)) * 1000
        section.notes.append(
            f"{target.label}: at {cpu_ms:.0f} ms of hub CPU per purchase (the "
            f"{TARGET_RATE:.0f}/s run) one core carries at most {1000 / cpu_ms:.0f} "
            f"purchases/s of this hub, and {TARGET_RATE:.0f}/s needs "
            f"{TARGET_RATE * cpu_ms / 1000:.1f} cores' worth of hub CPU alone (for "
            f"{TARGET_RATE:.0f}/s on one core: at most {1000 / TARGET_RATE:.0f} ms a purchase)."
        )
    section.notes.append(
        f"{outcomes[0].label}: the hub raised {breaches} SLA breach events during the case "
        "(token to network over its 10 s target, once queues had built up); the registry "
        f"stored the PINs as `{pin_scheme}` hashes."
    )


def _broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=3):
            return True
    except OSError:
        return False


async def measure(size: int, workdir: Path, log: Callable[[str], None]) -> Section:
    section = Section(NAME, TITLE, size, method=METHOD, notes=list(NOTES))
    if not _broker_up():
        section.notes.append(
            f"Mosquitto at {BROKER[0]}:{BROKER[1]} not reachable: not measured (the hub "
            "process reaches the gateway over the bus)."
        )
        return section
    cases = list(CASES)
    if not await postgres_up():
        cases = [c for c in cases if c[0] != "postgresql"]
        section.notes.append("PostgreSQL at 127.0.0.1:5432 not reachable: SQLite only.")
    if size < SMOKE_CASES_BELOW:
        # Smoke sizes prove the wiring: one worker on SQLite (both carriers), two on
        # PostgreSQL.
        cases = [c for c in cases if c[:2] != ("postgresql", 1)]
    for n, (backend, workers, carrier) in enumerate(cases):
        # Profiled once, on the first case, and not at smoke sizes.
        profiled = max(3, size // 4) if n == 0 and size >= SMOKE_CASES_BELOW else 0
        await _case(
            section,
            backend,
            workers,
            carrier,
            size,
            workdir / f"{backend}-{workers}-{carrier}",
            log,
            profiled=profiled,
        )
    return section


def run(size: int = DEFAULT_SIZE) -> Section:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-token-") as workdir:
        section = asyncio.run(
            measure(size, Path(workdir), lambda line: print(line, file=sys.stderr))
        )
    section.seconds = time.perf_counter() - started
    return section
