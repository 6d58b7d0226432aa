"""Entry point of the `pintar` console command: one Typer app, one sub-app per tool.

Every sub-command lives in its own `*_cmd` module and is imported only when it runs (or
when its own help is asked for): `pintar --help` and the codec commands (`sts`, `pdu`,
`frame`, `iso8583`) must not pay for the web stack, the database or MQTT, which the
service commands need. The root help lists the commands from the one-line texts below;
`tests/operator_data/test_cli_imports.py` checks they match the modules' own help.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

from operator_data.cli import root_help

if TYPE_CHECKING:
    import click  # annotations only

# The panels of `pintar --help`, in this order.
RUN, CODECS, DATA = "Run", "Codecs", "Data and reports"


@dataclass(frozen=True)
class LazyCommand:
    """Where a sub-command lives and what `pintar --help` says of it."""

    module: str  # module of operator_data.cli
    attr: str  # a Typer sub-app, or the function of a single command
    help: str
    panel: str

    def load(self, name: str) -> click.Command:
        target = getattr(importlib.import_module(f"operator_data.cli.{self.module}"), self.attr)
        if isinstance(target, typer.Typer):
            # A group even with one command (`retention purge`), as `add_typer` made it.
            return typer.main.get_group(target)
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        return typer.main.get_command(single)

    def stub(self, name: str) -> click.Command:
        """A stand-in named and described like the command, without importing it."""
        return TyperCommand(name, help=self.help, rich_help_panel=self.panel)


COMMANDS: dict[str, LazyCommand] = {
    "demo": LazyCommand(
        "demo_cmd",
        "run",
        "Run everything: hub, modems over ptys, meters, phones, P2APST and AP2T simulators.",
        RUN,
    ),
    "hub": LazyCommand(
        "hub_cmd",
        "run",
        "Run one hub worker until SIGTERM/SIGINT. Several may share one PostgreSQL database"
        " and one broker; run `pintar db upgrade` before starting them.",
        RUN,
    ),
    "gateway": LazyCommand(
        "gateway_cmd",
        "run",
        "Run one gateway node until SIGTERM/SIGINT: its modems or SMPP link, its spool, and"
        " its MQTT bridge to the hub.",
        RUN,
    ),
    "helpdesk": LazyCommand("helpdesk_cmd", "app", "Helpdesk web app and operations API.", RUN),
    "p2apst-sim": LazyCommand(
        "p2apst_sim_cmd",
        "run",
        "Run the P2APST simulator (sign-on, inquiry, purchase, advices, token reports).",
        RUN,
    ),
    "sim": LazyCommand("sim_cmd", "app", "Simulated SMS network and emulated modems.", RUN),
    "sts": LazyCommand(
        "sts_cmd", "app", "STS prepaid tokens (IEC 62055-41): DKGA02 keys, EA07 tokens.", CODECS
    ),
    "pdu": LazyCommand("pdu_cmd", "app", "SMS PDUs (3GPP TS 23.040): decode and encode.", CODECS),
    "frame": LazyCommand(
        "frame_cmd", "app", "Meter ⇄ hub SMS frames (protocol version 1).", CODECS
    ),
    "iso8583": LazyCommand("iso8583_cmd", "app", "ISO 8583 messages of the P2APST link.", CODECS),
    "db": LazyCommand("db_cmd", "app", "The hub database: migrations.", DATA),
    "registry": LazyCommand(
        "registry_cmd",
        "app",
        "Registry of customers, meters, SIMs and phones: CSV import/export.",
        DATA,
    ),
    "users": LazyCommand(
        "users_cmd", "app", "Helpdesk users (roles helpdesk, supervisor, admin) and API keys.", DATA
    ),
    "sla": LazyCommand(
        "sla_cmd", "app", "Service-level figures computed from the state histories.", DATA
    ),
    "ap2t": LazyCommand("ap2t_cmd", "app", "The daily AP2T batch (non-transaction data).", DATA),
    "sms-costs": LazyCommand(
        "sms_costs_cmd",
        "app",
        "SMS cost data for the mobile operator, per customer and flow (0066 art. 6(4)).",
        DATA,
    ),
    "complaints": LazyCommand(
        "complaints_cmd",
        "app",
        "Complaint figures: the 15-working-day target, disruption, annual summary.",
        DATA,
    ),
    "retention": LazyCommand(
        "retention_cmd", "app", "Data retention (5/2021 art. 168, 222(m); QoS art. 4(6)).", DATA
    ),
    "bench": LazyCommand(
        "bench_cmd", "app", "Benchmarks (needs a source checkout with bench/).", DATA
    ),
}


class LazyGroup(TyperGroup):
    """The root group: resolves a sub-command by importing its module on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._loaded: dict[str, click.Command] = {}
        # Stand-ins, for Typer's "did you mean" suggestions; get_command loads the real one.
        self.commands = {name: spec.stub(name) for name, spec in COMMANDS.items()}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = spec.load(cmd_name)
        return self._loaded[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the table above: listing the commands must not import them.
        panels: dict[str, list[tuple[str, str]]] = {}
        for name, spec in COMMANDS.items():
            panels.setdefault(spec.panel, []).append((name, spec.help))
        options = [("--help", "Show this message and exit.")]
        usage = f"{ctx.command_path} [OPTIONS] COMMAND [ARGS]..."
        root_help.render(usage, self.help or "", options, panels)


app = typer.Typer(
    name="pintar",
    cls=LazyGroup,
    help="Operator Data system for PLN's two-way Listrik Pintar prepaid meters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # A callback makes Typer build a group (of our class) although no command is registered.
    pass


def main() -> None:
    app()
