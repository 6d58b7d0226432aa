"""`pintar users`: creating the first admin, listing users, issuing an API key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.api.auth import Accounts, LoginFailed, LoginGuard, LoginOk, LoginRefused
from operator_data.cli.main import app
from operator_data.settings import WebSettings
from operator_data.store import Store

pytestmark = pytest.mark.timeout(60)

runner = CliRunner()


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PINTAR_DATA_DIR": str(tmp_path)}


def test_add_list_and_key(tmp_path: Path) -> None:
    env = _env(tmp_path)
    added = runner.invoke(
        app,
        ["users", "add", "--role", "admin", "--password-stdin", "ade"],
        input="kata-sandi-panjang\n",
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {"username": "ade", "role": "admin", "created": True}
    listed = runner.invoke(app, ["users", "list"], env=env)
    assert json.loads(listed.stdout) == [
        {"username": "ade", "role": "admin", "active": True, "locked_until": None}
    ]
    issued = runner.invoke(app, ["users", "api-key", "ade", "--label", "grafana"], env=env)
    key = json.loads(issued.stdout)["api_key"]

    async def check() -> tuple[bool, bool, str | None]:
        async with Store(f"sqlite+aiosqlite:///{tmp_path / 'pintar.db'}") as store:
            accounts = Accounts(store)
            good = await accounts.authenticate("ade", "kata-sandi-panjang")
            bad = await accounts.authenticate("ade", "kata-sandi-salah!")
            principal = await accounts.by_api_key(key)
            return good is not None, bad is None, None if principal is None else principal.name

    assert asyncio.run(check()) == (True, True, "ade")


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--role", "admin", "ade"], "pendek", "password must be"),
        (["--role", "admin", "Ade!"], "kata-sandi-panjang", "username must be"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, args: list[str], password: str, message: str) -> None:
    result = runner.invoke(
        app, ["users", "add", "--password-stdin", *args], input=password + "\n", env=_env(tmp_path)
    )
    assert result.exit_code == 2
    assert message in result.stderr


def test_duplicate_user_and_unknown_role(tmp_path: Path) -> None:
    env = _env(tmp_path)
    args = ["users", "add", "--role", "helpdesk", "--password-stdin", "hana"]
    assert runner.invoke(app, args, input="kata-sandi-panjang\n", env=env).exit_code == 0
    again = runner.invoke(app, args, input="kata-sandi-panjang\n", env=env)
    assert again.exit_code == 2 and "already exists" in again.stderr
    wrong_role = runner.invoke(app, ["users", "add", "--role", "root", "x1"], input="a\n", env=env)
    assert wrong_role.exit_code == 2
    missing = runner.invoke(app, ["users", "api-key", "nobody"], env=env)
    assert missing.exit_code == 2


def test_unlock_ends_a_login_lock_out(tmp_path: Path) -> None:
    env = _env(tmp_path)
    args = ["users", "add", "--role", "helpdesk", "--password-stdin", "hana"]
    assert runner.invoke(app, args, input="kata-sandi-panjang\n", env=env).exit_code == 0

    async def login(*passwords: str) -> list[type]:
        async with Store(f"sqlite+aiosqlite:///{tmp_path / 'pintar.db'}") as store:
            guard = LoginGuard(store, WebSettings(login_max_failures=2))
            return [
                type(await guard.login("hana", password, "192.0.2.1")) for password in passwords
            ]

    locked = asyncio.run(login("kata-sandi-salah!", "kata-sandi-salah!", "kata-sandi-panjang"))
    assert locked == [LoginFailed, LoginRefused, LoginRefused]
    [listed] = json.loads(runner.invoke(app, ["users", "list"], env=env).stdout)
    assert listed["locked_until"] is not None  # the helpdesk can see why hana cannot log in
    unlocked = runner.invoke(app, ["users", "unlock", "hana"], env=env)
    assert unlocked.exit_code == 0, unlocked.output
    document = json.loads(unlocked.stdout)
    assert document["username"] == "hana" and document["unlocked"] is True
    assert document["was_locked_until"] is not None
    assert asyncio.run(login("kata-sandi-panjang")) == [LoginOk]
    missing = runner.invoke(app, ["users", "unlock", "nobody"], env=env)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
