"""`pintar sim`: simulated SMS network with emulated GSM modems on pseudo-terminals."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Annotated

import typer

from gateway.msisdn import MsisdnError, normalise
from meter_sim.modem_emulator import TimingProfile
from meter_sim.network.run import running_network
from operator_data.cli.output import fail

app = typer.Typer(help="Simulated SMS network and emulated modems.", no_args_is_help=True)


async def _serve(modems: int, timing: TimingProfile, echo: str | None, seed: int) -> None:
    async with running_network(modems, timing=timing, echo=echo, seed=seed) as running:
        for modem in running.modems:
            sys.stdout.write(f"{modem.msisdn} {modem.device_path}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


@app.command("network")
def network(
    modems: Annotated[int, typer.Option("--modems", help="Number of emulated modems.")] = 1,
    profile: Annotated[
        str, typer.Option("--profile", help="fast (no delays) or realistic (5-10 s a send).")
    ] = "fast",
    echo: Annotated[
        str | None, typer.Option("--echo", help="MSISDN that answers every SMS with its text.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated randomness.")] = 0,
) -> None:
    """Start the network; print `MSISDN /dev/pts/N` per modem and run until interrupted."""
    if not 1 <= modems <= 64:
        fail("--modems must be 1-64")
    try:
        timing = TimingProfile(profile)
    except ValueError:
        fail(f"--profile {profile!r} is not fast or realistic")
    number = None
    if echo is not None:
        try:
            number = normalise(echo, mobile_only=False)
        except MsisdnError as error:
            fail(str(error))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(modems, timing, number, seed))
