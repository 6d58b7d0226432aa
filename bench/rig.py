"""Emulated modems for the benchmarks: a counting sink on the network and a send delay that
is recorded (what the emulator "slept") and optionally time-compressed."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from gateway.at.config import ModemConfig
from meter_sim.modem_emulator import ModemEmulator, TimingProfile
from meter_sim.network import NetworkProfile, NetworkSms, NetworkStatusReport, SmsNetwork
from meter_sim.network.run import FIRST_MODEM

SINK = "+6281299990000"


@dataclass(slots=True)
class Radio:
    """One modem's emulated air time: (start, end, emulated seconds) per send, loop time."""

    scale: float
    sends: list[tuple[float, float, float]] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(seconds * self.scale)
        self.sends.append((start, loop.time(), seconds))


class Sink:
    """The recipient of every benchmark SMS: when each text reached the network."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Condition()

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.arrived[sms.text or ""] = asyncio.get_running_loop().time()
        async with self.changed:
            self.changed.notify_all()
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None

    async def wait_for(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.arrived) >= count)


@dataclass(slots=True)
class Modems:
    network: SmsNetwork
    emulators: list[ModemEmulator]
    radios: list[Radio]
    sink: Sink

    def configs(self) -> list[ModemConfig]:
        return [
            ModemConfig(
                port=e.device_path,
                name=f"m{n}",
                storage_poll_interval=3600.0,
                # The driver's first probe is "ESC AT", which the emulator does not take
                # as a command: start-up always costs one probe timeout (not measured).
                probe_timeout=0.3,
            )
            for n, e in enumerate(self.emulators)
        ]

    def emulated_seconds(self) -> list[float]:
        return [s[2] for radio in self.radios for s in radio.sends]


@asynccontextmanager
async def emulated_modems(
    count: int, *, realistic: bool, scale: float = 1.0, seed: int = 0
) -> AsyncIterator[Modems]:
    """`count` emulators on ptys, on a network with no delivery delay (only the modem's
    send time matters here); a full SIM is retried quickly so inbound runs are not paced
    by the SMSC's retry interval."""
    profile = NetworkProfile(retry_interval=0.02, max_attempts=1_000_000)
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(SmsNetwork(profile, seed=seed))
        sink = Sink()
        network.attach(SINK, sink)
        radios = [Radio(scale) for _ in range(count)]
        emulators = [
            await stack.enter_async_context(
                ModemEmulator(
                    network,
                    f"+{FIRST_MODEM + n}",
                    timing=TimingProfile.REALISTIC if realistic else TimingProfile.FAST,
                    seed=seed + n,
                    sleep=radios[n].sleep,
                )
            )
            for n in range(count)
        ]
        yield Modems(network, emulators, radios, sink)


def busy_fraction(radios: list[Radio], start: float, end: float) -> float:
    """Share of the modems' time in [start, end] spent on the air (sending)."""
    if end <= start or not radios:
        return 0.0
    busy = 0.0
    for radio in radios:
        for begin, _, seconds in radio.sends:
            # The interval the emulator asked for, not what the loop delivered: scheduling
            # latency is the pool's overhead, not air time.
            finish = begin + seconds * radio.scale
            busy += max(0.0, min(finish, end) - max(begin, start))
    return busy / (len(radios) * (end - start))


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]
