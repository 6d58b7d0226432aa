"""`pintar users`: helpdesk accounts (the first admin is created here) and API keys."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer

from operator_data.api.auth import Accounts, AuthError, Role
from operator_data.cli.db_cmd import ConfigOption, settings_or_fail
from operator_data.cli.output import emit, fail
from operator_data.settings import Settings
from operator_data.store import Store
from operator_data.store.types import utcnow

app = typer.Typer(help="Helpdesk users (roles helpdesk, supervisor, admin) and API keys.")


async def _add(settings: Settings, name: str, role: Role, password: str) -> dict[str, Any]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        user = await Accounts(store).create_user(name, role, password)
    return {"username": user.username, "role": user.role.value, "created": True}


async def _list(settings: Settings) -> list[dict[str, Any]]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        users = await Accounts(store).list_users()
    now = utcnow()
    return [
        {
            "username": u.username,
            "role": u.role.value,
            "active": u.active,
            "locked_until": None if (until := u.locked_at(now)) is None else until.isoformat(),
        }
        for u in users
    ]


async def _key(settings: Settings, name: str, label: str) -> str | None:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        accounts = Accounts(store)
        user = await accounts.user_by_name(name)
        if user is None:
            return None
        return await accounts.create_api_key(user, label)


async def _unlock(settings: Settings, name: str) -> dict[str, Any]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        was = await Accounts(store).unlock(name, actor="cli")
    return {
        "username": name,
        "unlocked": True,
        "was_locked_until": None if was is None else was.isoformat(),
    }


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return value


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name: a-z 0-9 . _ -, starting with a letter.")],
    role: Annotated[Role, typer.Option("--role", help="helpdesk, supervisor or admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create a user; the password is prompted for (or read from stdin), never an argument."""
    settings = settings_or_fail(config)
    password = _read_password(password_stdin)
    try:
        emit(asyncio.run(_add(settings, name, role, password)))
    except AuthError as error:
        fail(str(error))


@app.command("list")
def list_(config: ConfigOption = None) -> None:
    """List users and their roles."""
    emit(asyncio.run(_list(settings_or_fail(config))))


@app.command("api-key")
def api_key(
    name: Annotated[str, typer.Argument(help="The user the key acts as.")],
    label: Annotated[str, typer.Option("--label", help="What the key is for.")] = "cli",
    config: ConfigOption = None,
) -> None:
    """Issue an API key for NAME (printed once; only its hash is stored)."""
    key = asyncio.run(_key(settings_or_fail(config), name, label))
    if key is None:
        fail(f"user {name!r} does not exist")
    emit({"username": name, "api_key": key})


@app.command("unlock")
def unlock(
    name: Annotated[str, typer.Argument(help="The user locked out by failed logins.")],
    config: ConfigOption = None,
) -> None:
    """End NAME's login lock-out now and reset the failed-login count (audited)."""
    try:
        emit(asyncio.run(_unlock(settings_or_fail(config), name)))
    except AuthError as error:
        fail(str(error))
