"""The gateway spool's cost per outbound SMS: transactions (each one fsync, synchronous=FULL)
and CPU, with the hub sending one SMS at a time and a whole claim at once."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from bench.report import Machine, Row, Section
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from gateway.transport import (
    DeliveryReport,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)

NAME = "spool_batch"
TITLE = "Gateway spool: transactions and CPU per outbound SMS"
DEFAULT_SIZE = 3000  # SMS per scenario
SMOKE_SIZE = 16
CLAIMS = (1, 64)  # SMS the hub sends at once: one after the other, and a claim (gathered)
BATCHING = (False, True)  # events handed over one at a time, or every ready one at once
MODEM = "smsc0"

METHOD = """\
A `SpooledGateway` on a file `Spool` (SQLite, WAL, synchronous=FULL) in front of an
instant in-memory carrier: each submitted SMS at once yields a `SendResult` (SENT, one
message reference) and a `DeliveryReport` carrying only that reference, which the gateway
matches to the message through the spool, as for a modem or an SMSC. The hub side sends N
SMS with status reports, `claim` at a time (`asyncio.gather`, as the hub's dispatcher sends
a claimed batch), and consumes `events()`, acking with `ack_many` whatever has arrived
each time it wakes (as acks arrive over the MQTT bus, in lists). A scenario ends when both
events of every SMS are acknowledged.

**Transactions** are counted with SQLite's trace callback on the spool's connection: an
explicit `BEGIN … COMMIT` is one, and so is every write statement run outside one
(autocommit). Each is one WAL commit with its fsync. **CPU** is the process's CPU time
(`time.process_time`, every thread: the event loop and aiosqlite's connection thread) over
the scenario, per SMS; the fake carrier costs next to nothing, so it is the gateway's and
the spool's own. Throughput is wall-clock and moves with the disk's fsync latency.
"""

NOTES = [
    "Before group commit (the gateway of commit f7a4a7a, this script, same machine, runs "
    "alternated with the new code, load 0.6-4): 5.00 transactions per SMS one at a time "
    "and 5.04 with claims, in every scenario (accept, SENDING, outcome, report and acks "
    "were each their own commit whatever the concurrency; the carrier's batches were not "
    "used); CPU 2.0-2.8 ms per SMS; 150-350 SMS/s. The new code in the same alternation: "
    "one by one 3.54-3.56 / 3.19-3.36 transactions and 1.5 / 1.1-1.5 ms CPU per SMS; "
    "batched 1.00 / 0.017 transactions and 0.57-0.77 / 0.21-0.28 ms CPU per SMS.",
    "A token purchase is three outbound SMS (token, receipt, customer reply) plus the "
    "meter's inbound reply: multiply by about 3 for the figure per purchase.",
    "A carrier that hands its events over one at a time (meter_sim's NetworkCarrier) gets "
    "each stored before it is asked for the next (that is what lets a modem free a SIM slot "
    "or an SMSC get its deliver_sm answered), so its results and reports share a commit "
    "only with the sends and acks that arrive meanwhile. The SMPP link and the modem pool "
    "hand over every ready event at once (`carrier_event_batches`): one commit for all.",
    "Throughput moves with the disk's fsync latency and other load; the transaction count "
    "is what group commit changes, CPU follows it (fewer commits, fewer thread hops).",
]


class InstantCarrier:
    """Reports each SMS sent and delivered at once; costs next to nothing. Hands its events
    over one at a time, as meter_sim's NetworkCarrier does."""

    def __init__(self) -> None:
        self._events: asyncio.Queue[TransportEvent] = asyncio.Queue()
        self._references = itertools.count()

    async def submit(self, sms: OutboundSms) -> None:
        reference = next(self._references) % 256
        now = datetime.now(UTC)
        self._events.put_nowait(
            SendResult(
                f"sent:{sms.message_id}",
                sms.message_id,
                SendStatus.SENT,
                now,
                (reference,),
                sms.to,
                modem=MODEM,
            )
        )
        self._events.put_nowait(
            DeliveryReport(
                f"report:{sms.message_id}", None, sms.to, reference, 0, now, now, modem=MODEM
            )
        )

    async def carrier_events(self) -> AsyncIterator[TransportEvent]:
        while True:
            yield await self._events.get()


class InstantBatchingCarrier(InstantCarrier):
    """As InstantCarrier, but hands over every ready event at once, as the SMPP link and
    the modem pool do (gateway.spooled.BatchingCarrier)."""

    async def carrier_event_batches(self) -> AsyncIterator[list[TransportEvent]]:
        while True:
            ready = [await self._events.get()]
            while len(ready) < 256 and not self._events.empty():
                ready.append(self._events.get_nowait())
            yield ready


class Transactions:
    """SQLite trace callback (runs on the connection's thread): counts commits."""

    WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})

    def __init__(self) -> None:
        self.count = 0
        self._open = False

    def __call__(self, statement: str) -> None:
        words = statement.split(None, 2)
        if not words or words[0].startswith("--"):  # a trigger's statement, not one of ours
            return
        head = words[0].upper()
        if head == "BEGIN":
            self._open = True
        elif head in ("COMMIT", "END"):
            self._open = False
            self.count += 1
        elif head == "ROLLBACK" and (len(words) == 1 or words[1].upper() != "TO"):
            self._open = False
        elif head in self.WRITES and not self._open:
            self.count += 1


async def _scenario(workdir: Path, size: int, claim: int, batching: bool) -> dict[str, float]:
    transactions = Transactions()
    carrier = InstantBatchingCarrier() if batching else InstantCarrier()
    async with (
        Spool(workdir / f"spool-{claim}-{batching}.db") as spool,
        SpooledGateway("gw-bench", carrier, spool, redeliver_after=3600.0) as gateway,
    ):
        await spool.db.set_trace_callback(transactions)
        expected = 2 * size
        acked = 0
        arrived: list[str] = []
        wake = asyncio.Event()
        done = asyncio.Event()

        async def consume() -> None:
            async for event in gateway.events():
                arrived.append(event.event_id)
                wake.set()

        async def acknowledge() -> None:
            nonlocal acked, arrived
            while acked < expected:
                await wake.wait()
                wake.clear()
                batch, arrived = arrived, []
                if batch:
                    await gateway.ack_many(batch)
                    acked += len(batch)
            done.set()

        messages = [
            OutboundSms(f"c{claim}-{n:06d}", f"+62812{n:07d}", text=f"Token {n:020d}")
            for n in range(size)
        ]
        tasks = [asyncio.create_task(consume()), asyncio.create_task(acknowledge())]
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, size, claim):
            await asyncio.gather(*(gateway.send(sms) for sms in messages[start : start + claim]))
        await done.wait()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await spool.db.set_trace_callback(None)
        left = len(await spool.unacknowledged())
    if left:
        raise RuntimeError(f"{left} events left unacknowledged")
    return {
        "transactions": transactions.count / size,
        "cpu_ms": cpu * 1000 / size,
        "rate": size / wall,
        "wall": wall,
    }


async def measure(size: int, workdir: Path) -> Section:
    machine = Machine.current()
    section = Section(NAME, TITLE, size, method=METHOD, notes=list(NOTES))
    section.notes.append(
        f"This section was measured on {machine.cpu} ({machine.cores} cores, "
        f"{machine.ram_gib} GiB), Python {machine.python}, {machine.date}, commit "
        f"{machine.commit}."
    )
    await _scenario(workdir / "warm", min(size, 50), 8, True)  # first file: not measured
    for batching in BATCHING:
        for claim in CLAIMS:
            figures = await _scenario(workdir, size, claim, batching)
            section.rows += _rows(size, claim, batching, figures)
    return section


def _rows(size: int, claim: int, batching: bool, figures: dict[str, float]) -> list[Row]:
    label = (
        ("one SMS at a time" if claim == 1 else f"claims of {claim} at once")
        + ", carrier events "
        + ("batched" if batching else "one by one")
    )
    detail = (
        f"{size} SMS with a result and a report each in {figures['wall']:.2f} s; "
        f"{figures['transactions']:.2f} transactions and {figures['cpu_ms']:.2f} ms CPU per SMS"
    )
    return [
        Row(f"{label}: transactions", figures["transactions"], "per SMS", detail=detail),
        Row(f"{label}: CPU", figures["cpu_ms"], "ms per SMS"),
        Row(f"{label}: throughput", figures["rate"], "SMS/s"),
    ]


def run(size: int = DEFAULT_SIZE) -> Section:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-spool-batch-") as workdir:
        (Path(workdir) / "warm").mkdir()
        section = asyncio.run(measure(size, Path(workdir)))
    section.seconds = time.perf_counter() - started
    return section
