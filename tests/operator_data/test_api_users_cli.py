"""`pintar users`: creating the first admin, listing users, API keys (issue, list,
revoke), unlock, (re)activation, roles, password resets; the last active admin stays."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from operator_data.api.auth import Accounts, LoginFailed, LoginGuard, LoginOk, LoginRefused
from operator_data.cli.main import app
from operator_data.settings import WebSettings
from operator_data.store import Store, schema

pytestmark = pytest.mark.timeout(60)

runner = CliRunner()


OS_USER = "ops-ade"  # getpass.getuser() reads LOGNAME first
CLI = f"cli:{OS_USER}"  # the audit actor of a change made with the CLI


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PINTAR_DATA_DIR": str(tmp_path), "LOGNAME": OS_USER}


def _store(tmp_path: Path) -> Store:
    return Store(f"sqlite+aiosqlite:///{tmp_path / 'pintar.db'}")


def _add(env: dict[str, str], name: str, role: str) -> None:
    args = ["users", "add", "--role", role, "--password-stdin", name]
    assert runner.invoke(app, args, input="kata-sandi-panjang\n", env=env).exit_code == 0


def _audit(tmp_path: Path, secrets: tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """The audit rows, after checking that none holds one of `secrets`."""

    async def read() -> list[Any]:
        async with _store(tmp_path) as store, store.read() as conn:
            log = schema.audit_log
            return list(
                await conn.execute(
                    select(log.c.actor, log.c.action, log.c.subject_id, log.c.detail).order_by(
                        log.c.id
                    )
                )
            )

    rows = asyncio.run(read())
    assert all(s not in json.dumps(r.detail) for r in rows for s in secrets)
    return [(r.actor, r.action, r.subject_id) for r in rows]


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


def test_deactivate_activate_and_role(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _add(env, "ade", "admin")
    _add(env, "hana", "helpdesk")
    off = runner.invoke(app, ["users", "deactivate", "hana"], env=env)
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout) == {"username": "hana", "role": "helpdesk", "active": False}
    on = runner.invoke(app, ["users", "activate", "hana"], env=env)
    assert json.loads(on.stdout)["active"] is True
    role = runner.invoke(app, ["users", "role", "hana", "supervisor"], env=env)
    assert role.exit_code == 0, role.output
    assert json.loads(role.stdout) == {"username": "hana", "role": "supervisor", "active": True}
    # ade is the only active admin: nobody, the command line included, takes that away.
    for args in (["role", "ade", "helpdesk"], ["deactivate", "ade"]):
        refused = runner.invoke(app, ["users", *args], env=env)
        assert refused.exit_code == 2 and "ade is the last active admin" in refused.stderr
    assert runner.invoke(app, ["users", "role", "hana", "admin"], env=env).exit_code == 0
    demoted = runner.invoke(app, ["users", "role", "ade", "helpdesk"], env=env)
    assert demoted.exit_code == 0 and json.loads(demoted.stdout)["role"] == "helpdesk"
    for args in (["role", "nobody", "admin"], ["activate", "nobody"], ["deactivate", "nobody"]):
        missing = runner.invoke(app, ["users", *args], env=env)
        assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert runner.invoke(app, ["users", "role", "hana", "root"], env=env).exit_code == 2
    listed = json.loads(runner.invoke(app, ["users", "list"], env=env).stdout)
    assert [(u["username"], u["role"], u["active"]) for u in listed] == [
        ("ade", "helpdesk", True),
        ("hana", "admin", True),
    ]
    assert [a for a in _audit(tmp_path, ()) if a[1] != "user.create"] == [
        (CLI, "user.deactivate", "hana"),
        (CLI, "user.activate", "hana"),
        (CLI, "user.role", "hana"),
        (CLI, "user.role", "hana"),
        (CLI, "user.role", "ade"),
    ]


def test_password_reset_reads_the_password_from_a_prompt_or_stdin(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _add(env, "hana", "helpdesk")

    async def check(password: str) -> bool:
        async with _store(tmp_path) as store:
            return await Accounts(store).authenticate("hana", password) is not None

    piped = runner.invoke(
        app, ["users", "password", "--stdin", "hana"], input="kata-sandi-baru-1\n", env=env
    )
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout) == {"username": "hana", "password_reset": True}
    assert asyncio.run(check("kata-sandi-baru-1")) and not asyncio.run(check("kata-sandi-panjang"))
    prompted = runner.invoke(
        app, ["users", "password", "hana"], input="kata-sandi-baru-2\nkata-sandi-baru-2\n", env=env
    )
    assert prompted.exit_code == 0, prompted.output
    assert "Password" in prompted.stderr and "kata-sandi-baru-2" not in prompted.output
    assert asyncio.run(check("kata-sandi-baru-2"))
    # Never from the command line, where every process on the machine could read it.
    argv = runner.invoke(app, ["users", "password", "hana", "kata-sandi-baru-3"], env=env)
    assert argv.exit_code == 2 and not asyncio.run(check("kata-sandi-baru-3"))
    short = runner.invoke(app, ["users", "password", "--stdin", "hana"], input="pendek\n", env=env)
    assert short.exit_code == 2 and "password must be" in short.stderr
    missing = runner.invoke(app, ["users", "password", "nobody"], env=env)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert "Password" not in missing.stderr  # refused before asking for a password
    secrets = tuple(f"kata-sandi-baru-{n}" for n in (1, 2, 3))
    assert [a for a in _audit(tmp_path, secrets) if a[1] == "user.password_reset"] == [
        (CLI, "user.password_reset", "hana"),
        (CLI, "user.password_reset", "hana"),
    ]


def test_password_reset_lifts_a_lock_out(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _add(env, "hana", "helpdesk")

    async def login(password: str) -> list[type]:
        async with _store(tmp_path) as store:
            guard = LoginGuard(store, WebSettings(login_max_failures=1))
            return [type(await guard.login("hana", password, "192.0.2.1"))]

    assert asyncio.run(login("kata-sandi-salah!")) == [LoginRefused]
    reset = runner.invoke(
        app, ["users", "password", "--stdin", "hana"], input="kata-sandi-baru-1\n", env=env
    )
    assert reset.exit_code == 0, reset.output
    assert asyncio.run(login("kata-sandi-baru-1")) == [LoginOk]


def test_api_keys_listed_without_secrets_and_revoked(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _add(env, "ade", "admin")
    keys = [
        json.loads(
            runner.invoke(app, ["users", "api-key", "ade", "--label", label], env=env).stdout
        )["api_key"]
        for label in ("grafana", "backup")
    ]
    listed = runner.invoke(app, ["users", "api-keys", "ade"], env=env)
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.stdout)
    assert [(k["label"], k["revoked_at"]) for k in items] == [("grafana", None), ("backup", None)]
    assert all(key not in listed.stdout for key in keys)
    key_id = items[0]["key_id"]
    assert keys[0].startswith(f"pk_{key_id}_")
    revoked = runner.invoke(app, ["users", "revoke-key", "ade", key_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["revoked_at"] is not None

    async def working() -> list[bool]:
        async with _store(tmp_path) as store:
            accounts = Accounts(store)
            return [await accounts.by_api_key(key) is not None for key in keys]

    assert asyncio.run(working()) == [False, True]
    relisted = json.loads(runner.invoke(app, ["users", "api-keys", "ade"], env=env).stdout)
    assert [k["revoked_at"] is not None for k in relisted] == [True, False]
    for args in (["revoke-key", "ade", "0123456789abcdef"], ["revoke-key", "nobody", key_id]):
        assert runner.invoke(app, ["users", *args], env=env).exit_code == 2
    missing = runner.invoke(app, ["users", "api-keys", "nobody"], env=env)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert (CLI, "api_key.revoke", "ade") in _audit(tmp_path, tuple(keys))


def test_no_api_key_for_a_deactivated_user(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for name, role in (("ade", "admin"), ("hana", "helpdesk")):
        args = ["users", "add", "--role", role, "--password-stdin", name]
        assert runner.invoke(app, args, input="kata-sandi-panjang\n", env=env).exit_code == 0
    assert runner.invoke(app, ["users", "deactivate", "hana"], env=env).exit_code == 0
    refused = runner.invoke(app, ["users", "api-key", "hana"], env=env)
    assert refused.exit_code == 2 and "deactivated" in refused.stderr
    keys = runner.invoke(app, ["users", "api-keys", "hana"], env=env)
    assert json.loads(keys.stdout) == []
