"""`pintar demo`: the whole system on one machine with no setup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Annotated

import typer

from operator_data.cli.output import fail
from operator_data.demo import DemoFaults, DemoOptions, FaultSpecError, Profile
from operator_data.demo.run import DataDirError, run_demo_interactive
from p2apst_adapter.simulator import LedgerError


def run(
    meters: Annotated[int, typer.Option(help="Simulated meters (and their customers).")] = 200,
    modems: Annotated[int, typer.Option(help="The hub's emulated GSM modems.")] = 4,
    profile: Annotated[
        Profile, typer.Option(help="fast: no delays; realistic: 5-10 s per modem send.")
    ] = Profile.FAST,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Seconds of traffic, then a summary (default: until Ctrl-C, which ends the "
            "same way; a second Ctrl-C skips the drain)."
        ),
    ] = None,
    faults: Annotated[
        str, typer.Option(help="Fault SPEC: 'moderate', or name=rate,... (see docs/demo.md).")
    ] = "none",
    seed: Annotated[int, typer.Option(help="Seed of the fleet and of every random choice.")] = 1,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its databases.")] = Path(
        "pintar-demo"
    ),
    summary: Annotated[Path | None, typer.Option(help="Also write the summary JSON here.")] = None,
    web_port: Annotated[
        int, typer.Option(help="Port of the helpdesk web app on 127.0.0.1 (0: none).")
    ] = 8000,
    purchase_rate: Annotated[
        float | None, typer.Option(help="Purchases per second (default: from meters and profile).")
    ] = None,
    drain: Annotated[float, typer.Option(help="Seconds to let answers in flight arrive.")] = 60.0,
    quiet: Annotated[bool, typer.Option(help="No live counters.")] = False,
) -> None:
    """Run everything: hub, modems over ptys, meters, phones, P2APST and AP2T simulators."""
    try:
        options = DemoOptions(
            meters=meters,
            modems=modems,
            profile=profile,
            duration=duration,
            faults=DemoFaults.parse(faults),
            seed=seed,
            data_dir=data_dir,
            summary=summary,
            web_port=web_port or None,
            purchase_rate=purchase_rate,
            drain_seconds=drain,
            live=not quiet,
        )
    except (FaultSpecError, ValueError) as error:
        fail(str(error))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Ctrl-C is the demo's own (stop, drain, summary; again: skip the drain). A third one
    # comes here as KeyboardInterrupt: quit without a summary.
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(run_demo_interactive(options))
        except (LedgerError, DataDirError) as error:
            fail(str(error))
