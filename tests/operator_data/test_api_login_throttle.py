"""Login throttling of the helpdesk: the per-username lock-out in the database, the
per-address limit in memory, the audit trail, and that a username that does not exist
cannot be told from one that does. SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection

from operator_data.api import auth
from operator_data.api.app import create_app
from operator_data.api.auth import (
    Accounts,
    AddressLimiter,
    AuthError,
    LoginFailed,
    LoginGuard,
    LoginOk,
    LoginRefused,
    Role,
    address_key,
)
from operator_data.api.tables import api_sessions, api_unknown_logins, api_users
from operator_data.crypto import MasterKey
from operator_data.crypto.pins import hash_pin, verify_pin
from operator_data.migrations.runner import downgrade, shipped_heads
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings, WebSettings
from operator_data.store import Store, schema
from tests.operator_data.conftest import Clock

pytestmark = pytest.mark.timeout(120)

PASSWORD = "rahasia-sekali-123"
WRONG = "salah-salah-salah-1"
HOME = "198.51.100.7"
ELSEWHERE = "203.0.113.9"
REFUSED_TEXT = "Terlalu banyak percobaan masuk yang gagal"


@dataclass
class Env:
    app: FastAPI
    store: Store
    clock: Clock
    checks: list[str]  # usernames' hashes verified: one entry per scrypt check

    async def post(
        self, username: str, password: str, *, ip: str = HOME, lang: str = "id"
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hd") as client:
            return await client.post(
                f"/login?lang={lang}", data={"username": username, "password": password}
            )

    async def user(self, username: str = "sari") -> dict[str, Any]:
        async with self.store.read() as conn:
            row = (
                await conn.execute(
                    select(api_users.c.failed_logins, api_users.c.locked_until).where(
                        api_users.c.username == username
                    )
                )
            ).one()
        return dict(row._mapping)

    async def pair(self, username: str = "sari", ip: str = HOME) -> dict[str, Any] | None:
        """The (username, address) counter that locks."""
        async with self.store.read() as conn:
            row = (
                await conn.execute(
                    select(
                        api_unknown_logins.c.failed_logins, api_unknown_logins.c.locked_until
                    ).where(
                        api_unknown_logins.c.username_hash
                        == auth.pair_key(username, address_key(ip))
                    )
                )
            ).first()
        return None if row is None else dict(row._mapping)

    async def audit(self) -> list[dict[str, Any]]:
        log = schema.audit_log
        async with self.store.read() as conn:
            rows = await conn.execute(
                select(log.c.actor, log.c.action, log.c.subject_id, log.c.detail).order_by(log.c.id)
            )
            return [dict(r._mapping) for r in rows]


def _settings(**web: Any) -> Settings:
    policy = {
        "login_max_failures": 3,
        "login_lockout_minutes": 15,
        "login_ip_max_failures": 100,
        "login_ip_window_minutes": 15,
        **web,
    }
    return Settings(web=WebSettings.model_validate(policy))


@pytest.fixture
def counted_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scrypt password check the login makes, still done for real."""
    checks: list[str] = []
    real = verify_pin

    def counting(password: str, stored: str) -> bool:
        checks.append(stored)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_pin", counting)
    return checks


@pytest.fixture
def make_env(
    store: Store, clock: Clock, master_key: MasterKey, counted_checks: list[str]
) -> Callable[..., Any]:
    async def make(**web: Any) -> Env:
        await Accounts(store).create_user("sari", Role.HELPDESK, PASSWORD)
        registry = Registry(store, master_key=master_key, pin_policy=PinPolicy())
        app = create_app(_settings(**web), store, registry, clock=clock)
        return Env(app, store, clock, counted_checks)

    return make


def _refusal(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.headers.get("retry-after")


# -- settings ----------------------------------------------------------------------------


def test_web_settings_defaults_and_bounds() -> None:
    web = WebSettings()
    assert (
        web.login_max_failures,
        web.login_lockout_minutes,
        web.login_ip_max_failures,
        web.login_ip_window_minutes,
    ) == (5, 15, 20, 15)
    for field in (
        "login_max_failures",
        "login_lockout_minutes",
        "login_ip_max_failures",
        "login_ip_window_minutes",
    ):
        with pytest.raises(ValidationError):
            WebSettings.model_validate({field: 0})
        assert WebSettings.model_fields[field].description


# -- per username ------------------------------------------------------------------------


async def test_failures_below_the_limit_then_a_success_reset_the_count(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env()
    for _ in range(2):
        failed = await env.post("sari", WRONG)
        assert failed.status_code == 401 and "Nama pengguna atau kata sandi salah." in failed.text
    assert (await env.user())["failed_logins"] == 2
    ok = await env.post("sari", PASSWORD)
    assert ok.status_code == 303 and "pintar_session" in ok.cookies
    assert await env.user() == {"failed_logins": 0, "locked_until": None}
    # The count starts again: two more failures still do not lock.
    assert [(await env.post("sari", WRONG)).status_code for _ in range(2)] == [401, 401]
    assert (await env.post("sari", PASSWORD)).status_code == 303

    trail = await env.audit()
    assert [(r["action"], r["subject_id"]) for r in trail] == [
        ("session.login_failed", "sari"),
        ("session.login_failed", "sari"),
        ("session.login", "sari"),
        ("session.login_failed", "sari"),
        ("session.login_failed", "sari"),
        ("session.login", "sari"),
    ]
    assert all(r["detail"]["ip"] == HOME for r in trail)
    assert [r["detail"].get("failures") for r in trail[:2]] == [1, 2]
    assert PASSWORD not in json.dumps(trail) and WRONG not in json.dumps(trail)


async def test_the_limit_locks_and_the_right_password_is_refused_unchecked(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env()
    statuses = [(await env.post("sari", WRONG)).status_code for _ in range(2)]
    locking = await env.post("sari", WRONG)
    assert statuses == [401, 401]
    assert _refusal(locking) == (429, str(15 * 60))
    assert REFUSED_TEXT in locking.text and "kata sandi salah" not in locking.text
    # The name is locked at this address; the account only counts its failures.
    assert await env.pair() == {
        "failed_logins": 0,
        "locked_until": env.clock.now + timedelta(minutes=15),
    }
    assert await env.user() == {"failed_logins": 3, "locked_until": None}
    assert len(env.checks) == 3

    env.clock.advance(timedelta(minutes=5))
    refused = await env.post("sari", PASSWORD)
    assert _refusal(refused) == (429, str(10 * 60))
    assert "pintar_session" not in refused.cookies
    english = await env.post("sari", PASSWORD, lang="en")
    assert english.status_code == 429
    assert "Too many failed login attempts. Please try again later." in english.text
    # No password was looked at and nothing was counted while locked.
    assert len(env.checks) == 3
    assert (await env.user())["failed_logins"] == 3
    assert (await env.pair())["failed_logins"] == 0  # type: ignore[index]

    trail = await env.audit()
    actions = [r["action"] for r in trail]
    assert actions == [
        "session.login_failed",
        "session.login_failed",
        "session.login_failed",
        "session.locked",
        "session.login_refused",
        "session.login_refused",
    ]
    locked = trail[3]
    assert locked["actor"] == "system" and locked["subject_id"] == "sari"
    assert locked["detail"]["ip"] == HOME and locked["detail"]["known_user"] is True
    assert {r["detail"]["reason"] for r in trail[4:]} == {"locked"}
    assert PASSWORD not in json.dumps(trail)
    # From another address the right user still gets in: the guesser cannot lock them out.
    assert (await env.post("sari", PASSWORD, ip=ELSEWHERE)).status_code == 303
    assert (await env.post("sari", PASSWORD)).status_code == 429


async def test_the_lock_expires_by_itself(make_env: Callable[..., Any]) -> None:
    env: Env = await make_env()
    for _ in range(3):
        await env.post("sari", WRONG)
    env.clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    assert _refusal(await env.post("sari", PASSWORD)) == (429, "1")
    env.clock.advance(timedelta(seconds=1))
    assert (await env.post("sari", PASSWORD)).status_code == 303
    assert await env.user() == {"failed_logins": 0, "locked_until": None}


async def test_unlock_clears_the_lock_and_is_audited(make_env: Callable[..., Any]) -> None:
    env: Env = await make_env()
    for _ in range(3):
        await env.post("sari", WRONG)
    accounts = Accounts(env.store, clock=env.clock)
    until = await accounts.unlock("sari", actor="cli")
    assert until == env.clock.now + timedelta(minutes=15)
    assert await env.user() == {"failed_logins": 0, "locked_until": None}
    assert (await env.post("sari", PASSWORD)).status_code == 303
    assert await accounts.unlock("sari", actor="cli") is None  # not locked: nothing to lift
    with pytest.raises(AuthError, match="does not exist"):
        await accounts.unlock("nobody", actor="cli")
    unlocks = [r for r in await env.audit() if r["action"] == "user.unlock"]
    assert [(r["actor"], r["subject_id"]) for r in unlocks] == [("cli", "sari"), ("cli", "sari")]
    assert unlocks[0]["detail"]["locked_until"] == until.isoformat()
    assert unlocks[1]["detail"]["locked_until"] is None


async def test_parallel_guesses_get_no_more_checks_than_the_limit(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env()
    guard = LoginGuard(env.store, _settings().web, clock=env.clock)
    for name in ("sari", "nobody"):
        env.checks.clear()
        results = await asyncio.gather(*(guard.login(name, WRONG, HOME) for _ in range(10)))
        assert len(env.checks) == 3, name  # attempts 1-3 are checked, the rest are not
        assert sum(isinstance(r, LoginFailed) for r in results) == 2, name
        assert sum(isinstance(r, LoginRefused) for r in results) == 8, name
        locked = await env.pair(name)
        assert locked is not None
        assert locked["locked_until"] == env.clock.now + timedelta(minutes=15)


async def test_an_attempt_lost_half_way_cannot_leave_a_name_locked_for_ever(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env()
    # As if the third attempt's worker died after taking its number: no lock was written.
    async with env.store.begin() as conn:
        await conn.execute(
            insert(api_unknown_logins).values(
                username_hash=auth.pair_key("sari", address_key(HOME)),
                failed_logins=3,
                locked_until=None,
            )
        )
    refused = await env.post("sari", PASSWORD)
    assert _refusal(refused) == (429, str(15 * 60)) and env.checks == []
    env.clock.advance(timedelta(minutes=15))
    assert (await env.post("sari", PASSWORD)).status_code == 303


async def test_a_new_user_does_not_inherit_failures_counted_for_the_name(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env()
    for _ in range(2):
        await env.post("budi", WRONG)
    await Accounts(env.store).create_user("budi", Role.HELPDESK, PASSWORD)
    async with env.store.read() as conn:
        assert (await conn.execute(select(api_unknown_logins))).first() is None
    assert (await env.post("budi", WRONG)).status_code == 401


# -- per (username, address), and the account's slow-down --------------------------------


async def test_a_guesser_elsewhere_cannot_lock_the_right_user_out(
    make_env: Callable[..., Any],
) -> None:
    """The review's finding: five wrong passwords from anywhere locked any account,
    the admin's included, for everyone."""
    env: Env = await make_env()
    for _ in range(3):
        await env.post("sari", WRONG, ip=ELSEWHERE)
    assert _refusal(await env.post("sari", PASSWORD, ip=ELSEWHERE)) == (429, str(15 * 60))
    assert await env.pair("sari", HOME) is None
    assert (await env.post("sari", PASSWORD, ip=HOME)).status_code == 303
    # The guesser's address stays locked after the user's success.
    assert (await env.post("sari", PASSWORD, ip=ELSEWHERE)).status_code == 429
    # An IPv6 guesser moving inside its /64 is the same address.
    for n in range(3):
        await env.post("sari", WRONG, ip=f"2001:db8::{n + 1}")
    assert (await env.post("sari", PASSWORD, ip="2001:db8::99")).status_code == 429


async def test_the_account_slows_down_addresses_that_failed_for_it(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env(
        login_max_failures=10, login_account_slowdown_after=4, login_account_max_delay_s=8
    )
    guard = LoginGuard(env.store, _settings(login_account_slowdown_after=4,
                                            login_account_max_delay_s=8).web)  # fmt: skip
    assert [guard.delay(n).total_seconds() for n in range(3, 10)] == [0, 1, 2, 4, 8, 8, 8]
    guessers = ["192.0.2.1", "192.0.2.2"]
    for ip in guessers:
        for _ in range(2):
            assert (await env.post("sari", WRONG, ip=ip)).status_code == 401
    assert (await env.user())["failed_logins"] == 4
    # Slowed: the next check of a guesser takes the account's slot for 1 s ...
    assert (await env.post("sari", WRONG, ip=guessers[0])).status_code == 401
    checks = len(env.checks)
    # ... so the other guesser is refused unchecked until it is free again.
    assert _refusal(await env.post("sari", WRONG, ip=guessers[1])) == (429, "1")
    assert len(env.checks) == checks
    env.clock.advance(timedelta(seconds=1))
    assert (await env.post("sari", WRONG, ip=guessers[1])).status_code == 401  # 5 -> 2 s
    assert _refusal(await env.post("sari", WRONG, ip=guessers[0])) == (429, "2")
    # The right user, from an address that has not failed, is not held up at all.
    assert (await env.post("sari", PASSWORD, ip=HOME)).status_code == 303
    assert await env.user() == {"failed_logins": 0, "locked_until": None}
    assert (await env.post("sari", WRONG, ip=guessers[0])).status_code == 401
    refusals = [r for r in await env.audit() if r["action"] == "session.login_refused"]
    assert [r["detail"]["reason"] for r in refusals] == ["slowed", "slowed"]


async def test_parallel_guesses_share_one_slot_of_a_slowed_account(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env(login_max_failures=100, login_account_slowdown_after=2)
    guard = LoginGuard(env.store, _settings(login_max_failures=100,
                                            login_account_slowdown_after=2).web,
                       clock=env.clock)  # fmt: skip
    for name in ("sari", "nobody"):
        for _ in range(2):
            assert isinstance(await guard.login(name, WRONG, HOME), LoginFailed)
        env.checks.clear()
        results = await asyncio.gather(*(guard.login(name, WRONG, HOME) for _ in range(10)))
        assert len(env.checks) == 1, name
        assert sum(isinstance(r, LoginRefused) for r in results) == 9, name


async def test_unlock_and_a_password_reset_end_every_lock_of_the_name(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env()
    accounts = Accounts(env.store, clock=env.clock)
    for ip in (HOME, ELSEWHERE):
        for _ in range(3):
            await env.post("sari", WRONG, ip=ip)
    [listed] = [u for u in await accounts.list_users() if u.username == "sari"]
    assert listed.locked_at(env.clock.now) == env.clock.now + timedelta(minutes=15)
    assert await accounts.unlock("sari", actor="cli") == env.clock.now + timedelta(minutes=15)
    assert await env.pair("sari", HOME) is None and await env.pair("sari", ELSEWHERE) is None
    assert (await env.post("sari", PASSWORD, ip=ELSEWHERE)).status_code == 303
    for _ in range(3):
        await env.post("sari", WRONG)
    await accounts.reset_password("sari", "ganti-sandi-456", actor="cli")
    assert (await env.post("sari", "ganti-sandi-456")).status_code == 303


def test_the_new_limits_are_settings() -> None:
    web = WebSettings()
    assert (web.login_account_slowdown_after, web.login_account_max_delay_s) == (10, 60)
    for field in ("login_account_slowdown_after", "login_account_max_delay_s"):
        with pytest.raises(ValidationError):
            WebSettings.model_validate({field: 0})
        assert WebSettings.model_fields[field].description


# -- unknown usernames -------------------------------------------------------------------


async def test_unknown_usernames_get_exactly_the_same_answers(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env()
    known: list[httpx.Response] = []
    unknown: list[httpx.Response] = []
    checks: list[int] = []

    async def both(password: str, lang: str = "id") -> None:
        before = len(env.checks)
        known.append(await env.post("sari", password, lang=lang, ip=HOME))
        checks.append(len(env.checks) - before)
        before = len(env.checks)
        unknown.append(await env.post("nobody", password, lang=lang, ip=ELSEWHERE))
        checks.append(len(env.checks) - before)

    await both(WRONG)
    await both(WRONG, "en")
    await both(WRONG)  # locks both
    await both(PASSWORD)  # refused unchecked for both
    await both(WRONG, "en")
    env.clock.advance(timedelta(minutes=15))  # both locks run out
    await both(WRONG)
    await both(WRONG)

    summary = [r.status_code for r in known]
    assert summary == [401, 401, 429, 429, 429, 401, 401]
    for a, b in zip(known, unknown, strict=True):
        assert a.status_code == b.status_code
        assert a.headers.get("retry-after") == b.headers.get("retry-after")
        assert a.text == b.text
        assert dict(a.cookies) == dict(b.cookies)
        assert "pintar_session" not in a.cookies
    assert checks[0::2] == checks[1::2] == [1, 1, 1, 0, 0, 1, 1]

    trail = await env.audit()
    locks = [r for r in trail if r["action"] == "session.locked"]
    assert [(r["subject_id"], r["detail"]["known_user"]) for r in locks] == [
        ("sari", True),
        ("nobody", False),
    ]
    # What a name leaves in the database is its counters, under digests: per (name,
    # address) for both, and the unknown name's account counter beside the user's own.
    async with env.store.read() as conn:
        rows = (await conn.execute(select(api_unknown_logins))).all()
    assert {r.username_hash: r.failed_logins for r in rows} == {
        auth.pair_key("sari", address_key(HOME)): 2,
        auth.pair_key("nobody", address_key(ELSEWHERE)): 2,
        auth.digest("nobody"): 5,
    }
    assert (await env.user())["failed_logins"] == 5


async def test_expired_unknown_locks_are_cleaned_up(make_env: Callable[..., Any]) -> None:
    env: Env = await make_env(login_max_failures=1)
    await env.post("ghost-1", WRONG)  # locks at once
    env.clock.advance(timedelta(minutes=16))
    await env.post("ghost-2", WRONG)  # a new lock sweeps the expired one
    async with env.store.read() as conn:
        rows = (await conn.execute(select(api_unknown_logins.c.username_hash))).scalars().all()
    assert auth.pair_key("ghost-1", address_key(HOME)) not in rows
    assert auth.pair_key("ghost-2", address_key(HOME)) in rows


# -- per address -------------------------------------------------------------------------


async def test_the_address_limit_holds_across_usernames_and_recovers(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env(login_max_failures=10, login_ip_max_failures=4)
    names = ["sari", "ade", "budi", "hana"]
    assert [(await env.post(n, WRONG)).status_code for n in names] == [401] * 4
    checks = len(env.checks)
    refused = await env.post("sari", PASSWORD)
    assert _refusal(refused) == (429, str(15 * 60))
    assert REFUSED_TEXT in refused.text
    assert len(env.checks) == checks  # refused before any password check
    assert (await env.user())["failed_logins"] == 1  # and not counted against the name
    # Another address is not affected.
    assert (await env.post("sari", PASSWORD, ip=ELSEWHERE)).status_code == 303
    env.clock.advance(timedelta(minutes=15))
    assert (await env.post("sari", PASSWORD)).status_code == 303

    refusals = [r for r in await env.audit() if r["action"] == "session.login_refused"]
    assert [(r["subject_id"], r["detail"]) for r in refusals] == [
        ("sari", {"ip": HOME, "reason": "address"})
    ]


async def test_the_address_window_slides(make_env: Callable[..., Any]) -> None:
    env: Env = await make_env(login_max_failures=10, login_ip_max_failures=3)
    await env.post("ade", WRONG)
    env.clock.advance(timedelta(minutes=10))
    await env.post("ade", WRONG)
    assert (await env.post("sari", PASSWORD)).status_code == 303  # a success is not counted
    assert (await env.post("ade", WRONG)).status_code == 401
    assert _refusal(await env.post("ade", WRONG)) == (429, str(5 * 60))
    env.clock.advance(timedelta(minutes=5))  # the first failure leaves the window
    assert (await env.post("ade", WRONG)).status_code == 401
    assert (await env.post("ade", WRONG)).status_code == 429


def test_address_limiter_memory_is_bounded() -> None:
    clock = Clock()
    window = timedelta(minutes=15)
    limiter = AddressLimiter(2, window, max_addresses=3)
    for n in range(5):
        assert limiter.admit(f"192.0.2.{n}", clock.now) is None
    assert len(limiter) == 3  # the least recently seen went first
    # An address evicted early just starts again; at most max_failures stamps each.
    assert limiter.admit("192.0.2.4", clock.now) is None
    assert limiter.admit("192.0.2.4", clock.now) == clock.now + window
    # Idle addresses are forgotten once their failures have left the window.
    clock.advance(window)
    assert limiter.admit("192.0.2.9", clock.now) is None
    assert len(limiter) == 1
    limiter.forgive("192.0.2.9", clock.now)
    assert limiter.admit("192.0.2.9", clock.now) is None
    assert limiter.admit("192.0.2.9", clock.now) is None
    assert limiter.admit("192.0.2.9", clock.now) is not None


def test_address_keys() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"
    assert address_key("testclient") == "testclient"


async def test_guard_results_for_a_good_login(make_env: Callable[..., Any]) -> None:
    env: Env = await make_env()
    guard = LoginGuard(env.store, _settings().web, clock=env.clock)
    result = await guard.login("sari", PASSWORD, None)
    assert isinstance(result, LoginOk) and result.user.username == "sari"
    assert isinstance(await guard.login("sari", WRONG, None), LoginFailed)


# -- migration ---------------------------------------------------------------------------


def _columns(connection: Connection) -> tuple[set[str], set[str]]:
    inspector = inspect(connection)
    return {c["name"] for c in inspector.get_columns("api_users")}, set(inspector.get_table_names())


async def test_the_migration_upgrades_a_database_with_users(
    store: Store, clock: Clock, master_key: MasterKey
) -> None:
    assert "0003_helpdesk_login_lockout" in shipped_heads().split(",")
    await downgrade(store.engine, "0002_helpdesk")
    async with store.read() as conn:
        columns, tables = await conn.run_sync(_columns)
    assert "failed_logins" not in columns and "api_unknown_logins" not in tables

    # A user (and a session referring to it) from before the migration.
    hashed = hash_pin(PASSWORD)
    async with store.begin() as conn:
        user_id = (
            await conn.execute(
                insert(api_users)
                .values(
                    username="sari",
                    role="helpdesk",
                    password_hash=hashed,
                    active=True,
                    created_at=clock.now,
                    updated_at=clock.now,
                )
                .returning(api_users.c.user_id)
            )
        ).scalar_one()
        await conn.execute(
            insert(api_sessions).values(
                token_hash="0" * 64, user_id=user_id, created_at=clock.now, expires_at=clock.now
            )
        )

    await store.migrate()
    assert await store.current_revision() == shipped_heads()
    async with store.read() as conn:
        columns, tables = await conn.run_sync(_columns)
        row = (
            await conn.execute(select(api_users.c.failed_logins, api_users.c.locked_until))
        ).one()
    assert {"failed_logins", "locked_until"} <= columns and "api_unknown_logins" in tables
    assert tuple(row) == (0, None)

    guard = LoginGuard(store, _settings().web, clock=clock)
    assert isinstance(await guard.login("sari", WRONG, HOME), LoginFailed)
    assert isinstance(await guard.login("sari", PASSWORD, HOME), LoginOk)

    # And back down with that user and session in place, then up again.
    await downgrade(store.engine, "0002_helpdesk")
    async with store.read() as conn:
        columns, _ = await conn.run_sync(_columns)
        sessions = (await conn.execute(select(api_sessions.c.user_id))).scalars().all()
    assert "failed_logins" not in columns and sessions == [user_id]
    await store.migrate()
    assert await store.current_revision() == shipped_heads()


async def test_an_admin_sees_the_lock_and_lifts_it_through_the_api(
    make_env: Callable[..., Any],
) -> None:
    env: Env = await make_env()
    accounts = Accounts(env.store, clock=env.clock)
    admin = await accounts.create_user("ade", Role.ADMIN, PASSWORD)
    key = {"X-API-Key": await accounts.create_api_key(admin, "test")}
    for _ in range(3):
        await env.post("sari", WRONG)
    transport = httpx.ASGITransport(app=env.app, client=(HOME, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hd") as client:
        listed = (await client.get("/api/v1/users", headers=key)).json()["items"]
        locked = {u["username"]: u["locked_until"] for u in listed}
        assert locked["ade"] is None and locked["sari"] is not None
        answer = await client.post("/api/v1/users/sari/unlock", headers=key)
        assert answer.status_code == 200 and answer.json()["was_locked_until"] is not None
        missing = await client.post("/api/v1/users/nobody/unlock", headers=key)
        assert missing.status_code == 404
        listed = (await client.get("/api/v1/users", headers=key)).json()["items"]
        assert all(u["locked_until"] is None for u in listed)
    assert await env.user() == {"failed_logins": 0, "locked_until": None}
    unlocks = [r for r in await env.audit() if r["action"] == "user.unlock"]
    assert [(r["actor"], r["subject_id"]) for r in unlocks] == [("ade", "sari")]
