"""Our side of the comparisons: the same workload through `gateway.pool.ModemPool`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from bench.rig import SINK, Modems
from gateway.at.events import InboundSms as StoredSms
from gateway.pool import ModemPool, PoolConfig
from gateway.pool.journal import SendJournal
from gateway.transport import OutboundSms

#: No per-modem rate limit: the emulator's send time is the physical limit being measured
#: against (the production default of 6 s between starts would cap a 5 s send, not the pool).
UNLIMITED = PoolConfig(min_interval=0.0, reassembly_check_interval=3600.0)


@dataclass(frozen=True, slots=True)
class Outcome:
    started: float  # loop time when the workload was queued
    finished: float  # loop time when its last message reached the network
    latencies: list[float]  # queued -> reached the network, seconds of wall time

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def texts(count: int, prefix: str) -> list[str]:
    return [f"{prefix} {n:06d} Token 1234-5678-9012-3456-7890" for n in range(count)]


async def pool_outbound(
    modems: Modems, workload: Sequence[str], journal: SendJournal | None = None
) -> Outcome:
    """Queue `workload` at once (after one warm-up message) and wait for all of it. With a
    `journal` (the gateway's spool, as `pintar gateway` runs it) every part is stored then
    sent (AT+CMGW, journal, AT+CMSS, journal, AT+CMGD); without, AT+CMGS."""

    async def persist(sms: StoredSms) -> None:
        return None

    sink = modems.sink
    async with ModemPool(
        modems.configs(), persist=persist, journal=journal, config=UNLIMITED
    ) as pool:
        await pool.send(OutboundSms("warm-up", SINK, text="warm-up", status_report=False))
        await sink.wait_for(1)
        base = len(sink.arrived)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n, text in enumerate(workload):
            await pool.send(OutboundSms(f"b{n}", SINK, text=text, status_report=False))
        await sink.wait_for(base + len(workload))
    arrived = [sink.arrived[text] for text in workload]
    return Outcome(started, max(arrived), [t - started for t in arrived])


async def pool_inbound(modems: Modems, count: int) -> Outcome:
    """`count` SMS arrive at the modems (spread over them); done when all are persisted."""
    loop = asyncio.get_running_loop()
    stored: list[float] = []
    done = asyncio.Event()

    async def persist(sms: StoredSms) -> None:
        stored.append(loop.time())
        if len(stored) >= count:
            done.set()

    async with ModemPool(modems.configs(), persist=persist, config=UNLIMITED):
        # Entering returns once every modem has started: start-up is not in the figure.
        started = loop.time()
        for n in range(count):
            modem = modems.emulators[n % len(modems.emulators)]
            modems.network.submit(SINK, modem.msisdn, text=f"in {n:06d} SALDO 1234")
        await done.wait()
    return Outcome(started, max(stored), [t - started for t in stored])
