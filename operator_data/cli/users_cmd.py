"""`pintar users`: helpdesk accounts (the first admin is created here) and API keys.

Every change writes the audit row the same change made on the users page writes (same
action, subject and detail), with the actor `cli:<os user>`: the log says who ran it.
The rules that keep an active admin hold here too (`Accounts`), so the last one cannot
be demoted from the command line either."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

from operator_data.api.auth import API_KEY_PREFIX, Accounts, ApiKey, AuthError, Role, User
from operator_data.cli.output import FormatOption, emit, emit_rows, fail, parse_format
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.settings import Settings
from operator_data.store import Store, schema
from operator_data.store.types import utcnow

app = typer.Typer(help="Helpdesk users (roles helpdesk, supervisor, admin) and API keys.")


def cli_actor() -> str:
    """The audit actor of a change made here: `cli:` and the OS user who ran it."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        who = "unknown"
    return f"cli:{who}"


async def _audit(store: Store, action: str, username: str, detail: dict[str, Any]) -> None:
    """The row `operator_data.api.deps.audit` writes for the same change on the page,
    with `via` = cli instead of the page's session or API key."""
    async with store.begin() as conn:
        await conn.execute(
            schema.audit_log.insert().values(
                at=utcnow(),
                actor=cli_actor(),
                action=action,
                subject_type="user",
                subject_id=username,
                detail={"via": "cli", **detail},
            )
        )


async def _add(settings: Settings, name: str, role: Role, password: str) -> dict[str, Any]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        user = await Accounts(store).create_user(name, role, password)
        await _audit(store, "user.create", user.username, {"role": user.role.value})
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
            "locked_until": u.locked_at(now),
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
        key = await accounts.create_api_key(user, label)
        key_id = key.removeprefix(API_KEY_PREFIX).split("_")[0]  # public, never the secret
        await _audit(store, "api_key.create", name, {"label": label, "key_id": key_id})
        return key


async def _unlock(settings: Settings, name: str) -> dict[str, Any]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        was = await Accounts(store).unlock(name, actor=cli_actor())
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


async def _user(settings: Settings, name: str) -> User | None:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await Accounts(store).user_by_name(name)


async def _set_active(settings: Settings, name: str, active: bool) -> User | None:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await Accounts(store).set_active(name, active, actor=cli_actor())


async def _role(settings: Settings, name: str, role: Role) -> User | None:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await Accounts(store).set_role(name, role, actor=cli_actor())


async def _password(settings: Settings, name: str, password: str) -> User | None:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await Accounts(store).reset_password(name, password, actor=cli_actor())


async def _keys(settings: Settings, name: str) -> list[ApiKey] | None:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        accounts = Accounts(store)
        if await accounts.user_by_name(name) is None:
            return None
        return await accounts.list_api_keys(name)


async def _revoke(settings: Settings, name: str, key_id: str) -> ApiKey | None:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await Accounts(store).revoke_api_key(name, key_id, actor=cli_actor())


def _shown(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role.value, "active": user.active}


def _key_shown(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "label": key.label,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name: a-z 0-9 . _ -, starting with a letter.")],
    role: Annotated[Role, typer.Option("--role", help="helpdesk, supervisor or admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user; the password is prompted for (or read from stdin), never an argument."""
    settings = settings_or_fail(config, data_dir)
    password = _read_password(password_stdin)
    try:
        emit(asyncio.run(_add(settings, name, role, password)))
    except AuthError as error:
        fail(str(error))


USER_COLUMNS = ("username", "role", "active", "locked_until")
KEY_COLUMNS = ("key_id", "label", "created_at", "revoked_at")


@app.command("list")
def list_(
    format_: FormatOption = "json", config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """List users and their roles."""
    shape = parse_format(format_)
    users = asyncio.run(_list(settings_or_fail(config, data_dir)))
    emit_rows(users, shape, columns=USER_COLUMNS, title="Helpdesk users")


@app.command("api-key")
def api_key(
    name: Annotated[str, typer.Argument(help="The user the key acts as.")],
    label: Annotated[str, typer.Option("--label", help="What the key is for.")] = "cli",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Issue an API key for NAME (printed once; only its hash is stored)."""
    try:
        key = asyncio.run(_key(settings_or_fail(config, data_dir), name, label))
    except AuthError as error:
        fail(str(error))
    if key is None:
        fail(f"user {name!r} does not exist")
    emit({"username": name, "api_key": key})


def _emit_change(change: Coroutine[Any, Any, User | None], name: str) -> None:
    """Run an account change and print the user after it, or fail with why not."""
    try:
        user = asyncio.run(change)
    except AuthError as error:
        fail(str(error))
    if user is None:
        fail(f"user {name!r} does not exist")
    emit(_shown(user))


@app.command("unlock")
def unlock(
    name: Annotated[str, typer.Argument(help="The user locked out by failed logins.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """End NAME's login lock-out now and reset the failed-login count (audited)."""
    try:
        emit(asyncio.run(_unlock(settings_or_fail(config, data_dir), name)))
    except AuthError as error:
        fail(str(error))


@app.command("activate")
def activate(
    name: Annotated[str, typer.Argument(help="The deactivated user.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Reactivate NAME: the password and the API keys not revoked work again (audited)."""
    _emit_change(_set_active(settings_or_fail(config, data_dir), name, True), name)


@app.command("deactivate")
def deactivate(
    name: Annotated[str, typer.Argument(help="The user.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Deactivate NAME: their sessions end and their API keys stop working (audited)."""
    _emit_change(_set_active(settings_or_fail(config, data_dir), name, False), name)


@app.command("role")
def role(
    name: Annotated[str, typer.Argument(help="The user.")],
    new_role: Annotated[
        Role, typer.Argument(metavar="ROLE", help="helpdesk, supervisor or admin.")
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Give NAME another role; it holds from their next request (audited)."""
    _emit_change(_role(settings_or_fail(config, data_dir), name, new_role), name)


@app.command("password")
def password(
    name: Annotated[str, typer.Argument(help="The user whose password is reset.")],
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the new password from standard input.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set NAME's password (prompted for, or read from stdin; never an argument). Closes
    their sessions and lifts a login lock-out; API keys stay (audited)."""
    settings = settings_or_fail(config, data_dir)
    if asyncio.run(_user(settings, name)) is None:  # before asking for a password
        fail(f"user {name!r} does not exist")
    try:
        user = asyncio.run(_password(settings, name, _read_password(stdin)))
    except AuthError as error:
        fail(str(error))
    if user is None:
        fail(f"user {name!r} does not exist")
    emit({"username": name, "password_reset": True})


@app.command("api-keys")
def api_keys(
    name: Annotated[str, typer.Argument(help="The user whose keys are listed.")],
    format_: FormatOption = "json",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List NAME's API keys, revoked ones included (never a secret: none is stored)."""
    shape = parse_format(format_)
    keys = asyncio.run(_keys(settings_or_fail(config, data_dir), name))
    if keys is None:
        fail(f"user {name!r} does not exist")
    rows = [_key_shown(k) for k in keys]
    emit_rows(rows, shape, columns=KEY_COLUMNS, title=f"API keys of {name}")


@app.command("revoke-key")
def revoke_key(
    name: Annotated[str, typer.Argument(help="The user the key acts as.")],
    key_id: Annotated[str, typer.Argument(help="The key's id (`pintar users api-keys NAME`).")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke one of NAME's API keys for good (audited)."""
    key = asyncio.run(_revoke(settings_or_fail(config, data_dir), name, key_id))
    if key is None:
        fail(f"user {name!r} has no API key {key_id!r}")
    emit(_key_shown(key))
