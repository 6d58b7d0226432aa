"""A network with N emulated modems (and optionally an echo number), for `pintar sim network`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from meter_sim.modem_emulator import ModemEmulator, TimingProfile
from meter_sim.network.smsc import EchoEndpoint, NetworkProfile, SmsNetwork

FIRST_MODEM = 6281200000001


@dataclass(frozen=True, slots=True)
class RunningNetwork:
    network: SmsNetwork
    modems: list[ModemEmulator]
    echo: EchoEndpoint | None


@asynccontextmanager
async def running_network(
    modems: int,
    *,
    timing: TimingProfile = TimingProfile.FAST,
    echo: str | None = None,
    seed: int = 0,
) -> AsyncIterator[RunningNetwork]:
    """Modems get +6281200000001, +6281200000002, ..."""
    delays = (0.0, 0.0) if timing is TimingProfile.FAST else (1.0, 5.0)
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(
            SmsNetwork(NetworkProfile(min_delay=delays[0], max_delay=delays[1]), seed=seed)
        )
        emulators = [
            await stack.enter_async_context(
                ModemEmulator(network, f"+{FIRST_MODEM + n}", timing=timing, seed=seed + n)
            )
            for n in range(modems)
        ]
        yield RunningNetwork(network, emulators, EchoEndpoint(network, echo) if echo else None)
