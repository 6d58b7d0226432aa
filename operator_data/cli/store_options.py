"""The options every command that touches the hub's store takes: `--config` and `--data-dir`.

One definition, so `pintar users add`, `pintar sla report`, `pintar helpdesk serve`, ...
all find the same database for the same options (issue 17: `users add` wrote to
./pintar-data/ while the demo's data was in pintar-demo/, and nothing said why). Each
command declares both parameters and calls `settings_or_fail(config, data_dir)`.

Light on purpose: the settings module (pydantic, the crypto and MQTT models) is imported
only when a command runs, not when `pintar --help` lists the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from operator_data.cli.output import fail

if TYPE_CHECKING:
    from operator_data.settings import Settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", envvar="PINTAR_CONFIG", help="TOML settings file."),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="PINTAR_DATA_DIR",
        file_okay=False,
        help=(
            "Data directory (the SQLite database pintar.db, master key, batches); overrides"
            " data_dir of --config. `pintar demo` prints the one it uses."
        ),
    ),
]


def settings_or_fail(config: Path | None, data_dir: Path | None = None) -> Settings:
    """The settings of `config` (or defaults and environment), with `data_dir` on top;
    a bad file or value ends the command with exit status 2 and the reason."""
    from operator_data.settings import SettingsError, load_settings

    try:
        if data_dir is None:
            return load_settings(config)
        return load_settings(config, data_dir=data_dir)
    except SettingsError as error:
        fail(str(error))


def login_command(data_dir: Path, username: str = "admin") -> str:
    """The exact command that creates a helpdesk login in the store under `data_dir`
    (printed by `pintar demo` at start-up, for its own data directory)."""
    import shlex

    where = shlex.quote(str(data_dir.resolve()))
    return f"pintar users add {shlex.quote(username)} --role admin --data-dir {where}"
