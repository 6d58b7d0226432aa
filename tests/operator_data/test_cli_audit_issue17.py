"""Issue 17 item 14: a change made with `pintar users` is audited like the same change
made on the users page: the same action, subject and detail, the actor `cli:<os user>`.

The page's rows come from the real app (an admin creating a user and an API key on
/users); the CLI's from the real commands on the same SQLite file."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from operator_data.api.app import create_app
from operator_data.api.auth import Accounts, Role
from operator_data.cli import users_cmd
from operator_data.cli.main import app as cli
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings
from operator_data.store import Store, schema

pytestmark = pytest.mark.timeout(60)

PASSWORD = "kata-sandi-panjang"
runner = CliRunner()


def _env(where: Path) -> dict[str, str]:
    return {"PINTAR_DATA_DIR": str(where), "LOGNAME": "ops-budi"}


def _rows(where: Path) -> list[Any]:
    async def read() -> list[Any]:
        log = schema.audit_log
        query = select(
            log.c.actor, log.c.action, log.c.subject_type, log.c.subject_id, log.c.detail
        ).order_by(log.c.id)
        async with (
            Store(f"sqlite+aiosqlite:///{where / 'pintar.db'}") as store,
            store.read() as conn,
        ):
            return list(await conn.execute(query))

    return asyncio.run(read())


def _cli(where: Path, *args: str, stdin: str | None = None) -> str:
    result = runner.invoke(cli, ["users", *args], input=stdin, env=_env(where))
    assert result.exit_code == 0, result.output
    return result.stdout


def _page_changes(where: Path) -> None:
    """An admin (created directly) adds `rina` and an API key for her on /users."""

    async def run() -> None:
        async with Store(f"sqlite+aiosqlite:///{where / 'pintar.db'}") as store:
            await store.migrate()
            await Accounts(store).create_user("boss", Role.ADMIN, PASSWORD)
            registry = Registry(
                store, master_key=MasterKey(secrets.token_bytes(32)), pin_policy=PinPolicy()
            )
            web = create_app(Settings(data_dir=where), store, registry)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=web), base_url="http://hd"
            ) as client:
                login = await client.post("/login", data={"username": "boss", "password": PASSWORD})
                assert login.status_code == 303
                page = await client.get("/users")
                found = re.search(r'name="csrf" value="([^"]+)"', page.text)
                assert found is not None
                csrf = found.group(1)
                made = await client.post(
                    "/users",
                    data={
                        "csrf": csrf,
                        "username": "rina",
                        "role": "helpdesk",
                        "password": PASSWORD,
                    },
                )
                assert made.status_code in (200, 303), made.text
                key = await client.post("/users/rina/api-keys", data={"csrf": csrf, "label": "cli"})
                assert key.status_code in (200, 303), key.text

    asyncio.run(run())


def test_cli_actor_names_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "ops-sari")
    assert users_cmd.cli_actor() == "cli:ops-sari"


def test_add_and_api_key_write_the_pages_audit_rows(tmp_path: Path) -> None:
    _page_changes(tmp_path)
    page = {(r.action, r.subject_id): r for r in _rows(tmp_path) if r.actor == "boss"}
    assert {"user.create", "api_key.create"} <= {action for action, _ in page}

    _cli(tmp_path, "add", "--role", "helpdesk", "--password-stdin", "dewi", stdin=PASSWORD + "\n")
    issued = _cli(tmp_path, "api-key", "dewi", "--label", "cli")
    ours = [r for r in _rows(tmp_path) if r.actor == "cli:ops-budi"]
    assert [(r.action, r.subject_type, r.subject_id) for r in ours] == [
        ("user.create", "user", "dewi"),
        ("api_key.create", "user", "dewi"),
    ]
    created, key = ours
    assert created.detail == {"via": "cli", "role": "helpdesk"}
    assert page[("user.create", "rina")].detail["role"] == "helpdesk"
    # The key's public id is recorded, as on the page; the secret never is.
    # The page also records the acting login's role, which a CLI run does not have.
    assert set(key.detail) == set(page[("api_key.create", "rina")].detail) - {"role"}
    assert key.detail["label"] == "cli" and key.detail["key_id"] in issued
    secret = re.search(r'"api_key": "([^"]+)"', issued)
    assert secret is not None and secret.group(1) not in str([r.detail for r in _rows(tmp_path)])


def test_every_account_change_names_the_os_user(tmp_path: Path) -> None:
    for name, role in (("ade", "admin"), ("hana", "helpdesk")):
        _cli(tmp_path, "add", "--role", role, "--password-stdin", name, stdin=PASSWORD + "\n")
    _cli(tmp_path, "role", "hana", "supervisor")
    _cli(tmp_path, "deactivate", "hana")
    _cli(tmp_path, "activate", "hana")
    _cli(tmp_path, "unlock", "hana")
    _cli(tmp_path, "password", "hana", "--stdin", stdin="sandi-baru-panjang\n")
    _cli(tmp_path, "api-key", "hana")
    listed = _cli(tmp_path, "api-keys", "hana")
    found = re.search(r'"key_id": "([^"]+)"', listed)
    assert found is not None
    _cli(tmp_path, "revoke-key", "hana", found.group(1))
    rows = _rows(tmp_path)
    assert {r.actor for r in rows} == {"cli:ops-budi"}
    # user.unlock's row (Accounts.unlock) records no `via`, from the page either.
    assert {r.detail["via"] for r in rows if r.action != "user.unlock"} == {"cli"}
    assert [r.action for r in rows] == [
        "user.create",
        "user.create",
        "user.role",
        "user.deactivate",
        "user.activate",
        "user.unlock",
        "user.password_reset",
        "api_key.create",
        "api_key.revoke",
    ]


def test_a_refused_change_writes_no_row(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["users", "api-key", "nobody"], env=_env(tmp_path))
    assert result.exit_code != 0 and "does not exist" in result.output
    assert _rows(tmp_path) == []
