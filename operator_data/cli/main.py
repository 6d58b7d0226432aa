"""Entry point of the `pintar` console command: one Typer app, one sub-app per tool."""

from __future__ import annotations

import typer

from operator_data.cli import sts_cmd

app = typer.Typer(
    name="pintar",
    help="Operator Data system for PLN's two-way Listrik Pintar prepaid meters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(sts_cmd.app, name="sts")


def main() -> None:
    app()
