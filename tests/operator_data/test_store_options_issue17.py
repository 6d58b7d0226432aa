"""Issue 17: every command that touches the store takes the same `--config`/`--data-dir`,
and the demo's printed login command creates a login in the demo's own database."""

from __future__ import annotations

import asyncio
import inspect
import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from typer.testing import CliRunner

from operator_data.api.auth import Accounts
from operator_data.cli.main import COMMANDS
from operator_data.cli.main import app as cli
from operator_data.cli.store_options import login_command
from operator_data.demo import DemoOptions, run
from operator_data.demo.run import demo_settings
from operator_data.store import Store

pytestmark = pytest.mark.timeout(120)

# The commands whose every sub-command opens the hub's store.
STORE_COMMANDS = ("db", "registry", "users", "sla", "ap2t", "sms-costs", "retention", "helpdesk")
PASSWORD = "rahasia-sekali-123\n"


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PINTAR_CONFIG", "PINTAR_DATA_DIR", "PINTAR_DATABASE__URL"):
        monkeypatch.delenv(name, raising=False)


def _leaves(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _leaves(sub, f"{path} {name}")
    else:
        yield path, command


def _options(command: click.Command) -> set[str]:
    return {opt for p in command.params for opt in getattr(p, "opts", [])}


@pytest.mark.parametrize("name", [*STORE_COMMANDS, "hub"])
def test_every_store_command_takes_config_and_data_dir(name: str) -> None:
    leaves = list(_leaves(COMMANDS[name].load(name), name))
    assert leaves
    for path, command in leaves:
        assert {"--config", "--data-dir"} <= _options(command), path


def test_the_shared_options_are_one_definition() -> None:
    """Same help, same environment variable everywhere (PINTAR_DATA_DIR is documented by
    the option itself now)."""
    seen = set()
    for name in STORE_COMMANDS:
        for _, command in _leaves(COMMANDS[name].load(name), name):
            for param in command.params:
                if "--data-dir" in getattr(param, "opts", []):
                    assert isinstance(param, click.Option)
                    seen.add((param.envvar, param.help))
    assert len(seen) == 1
    ((envvar, _),) = seen
    assert envvar == "PINTAR_DATA_DIR"


def _users(data_dir: Path) -> list[str]:
    result = CliRunner().invoke(cli, ["users", "list", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return [u["username"] for u in json.loads(result.stdout)]


def test_users_add_writes_where_data_dir_says(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["users", "add", "ade", "--role", "admin", "--password-stdin"]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(one)], input=PASSWORD)
    assert result.exit_code == 0, result.output
    assert (one / "pintar.db").exists()
    assert _users(one) == ["ade"]
    assert _users(two) == []


def test_data_dir_wins_over_the_config_files(tmp_path: Path) -> None:
    config = tmp_path / "pintar.toml"
    config.write_text(f'data_dir = "{tmp_path / "from-config"}"\n', encoding="utf-8")
    chosen = tmp_path / "chosen"
    args = ["users", "add", "ade", "--role", "admin", "--password-stdin", "--config", str(config)]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(chosen)], input=PASSWORD)
    assert result.exit_code == 0, result.output
    assert (chosen / "pintar.db").exists()
    assert not (tmp_path / "from-config").exists()


def test_a_file_is_no_data_dir(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(cli, ["users", "list", "--data-dir", str(a_file)])
    assert result.exit_code == 2
    assert "--data-dir" in result.output and "file" in result.output


def test_the_demos_login_command_reaches_the_demos_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo's default data dir is relative: pintar-demo
    options = DemoOptions(web_port=None, live=False)
    settings = demo_settings(options)
    line = login_command(options.data_dir)
    words = shlex.split(line)
    assert words[:3] == ["pintar", "users", "add"]
    assert str((tmp_path / "pintar-demo").resolve()) in words  # absolute: works from anywhere
    monkeypatch.chdir(tmp_path.parent)
    result = CliRunner().invoke(cli, [*words[1:], "--password-stdin"], input=PASSWORD)
    assert result.exit_code == 0, result.output

    async def users() -> list[str]:
        async with Store.from_settings(settings) as store:
            return [u.username for u in await Accounts(store).list_users()]

    monkeypatch.chdir(tmp_path)  # where the demo's relative data dir is
    assert asyncio.run(users()) == ["admin"]


def test_the_demo_prints_the_login_command() -> None:
    """run_demo writes login_command(...) where it announces the web app (a full demo
    run is too slow for this; the command itself is tested above)."""
    source = inspect.getsource(run.run_demo)
    assert "login_command(options.data_dir)" in source
