"""User administration: the admin's /users page, the own-password page, and their JSON
twins (POST /api/v1/users/{name}/password, POST /api/v1/me/password). Role boundaries,
CSRF, password rules, resets and unlocks taking effect, and the audit trail. SQLite and
PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from operator_data.api.app import create_app
from operator_data.api.auth import Accounts, Role
from operator_data.api.tables import api_users
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings, WebSettings
from operator_data.store import Store, schema
from tests.operator_data.conftest import Clock

pytestmark = pytest.mark.timeout(120)

PASSWORD = "rahasia-sekali-123"
NEW = "kata-sandi-baru-456"
WRONG = "salah-salah-salah-1"
RULE_ID = "Kata sandi harus 10-256 karakter."
RULE_EN = "The password must be 10-256 characters long."
MAX_FAILURES = 3


@dataclass
class Session:
    """A browser-like client logged in as one user (its own cookie jar)."""

    client: httpx.AsyncClient
    csrf: str

    async def post(self, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(url, data={"csrf": self.csrf, **(data or {})})


@dataclass
class Env:
    app: FastAPI
    store: Store
    clock: Clock
    keys: dict[Role, str]
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://hd")
        self.clients.append(made)
        return made

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return await self.client().post("/login", data={"username": username, "password": password})

    async def session(self, username: str, password: str = PASSWORD) -> Session:
        client = self.client()
        answer = await client.post("/login", data={"username": username, "password": password})
        assert answer.status_code == 303, answer.text
        page = await client.get("/account/password")
        marker = 'name="csrf" value="'
        start = page.text.index(marker) + len(marker)
        return Session(client, page.text[start : page.text.index('"', start)])

    async def api(self, role: Role, url: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client().post(url, json=body, headers={"X-API-Key": self.keys[role]})

    async def user(self, username: str) -> dict[str, Any]:
        async with self.store.read() as conn:
            row = (
                await conn.execute(
                    select(
                        api_users.c.active, api_users.c.failed_logins, api_users.c.locked_until
                    ).where(api_users.c.username == username)
                )
            ).first()
        return {} if row is None else dict(row._mapping)

    async def audit(self, *actions: str) -> list[tuple[str, str, str | None]]:
        log = schema.audit_log
        async with self.store.read() as conn:
            rows = await conn.execute(
                select(log.c.actor, log.c.action, log.c.subject_id, log.c.detail).order_by(log.c.id)
            )
            found = [r for r in rows if r.action in actions]
        for row in found:  # no audit row ever carries a password
            text = json.dumps(row.detail)
            assert all(p not in text for p in (PASSWORD, NEW, WRONG))
        return [(r.actor, r.action, r.subject_id) for r in found]


@pytest.fixture
async def env(store: Store, clock: Clock, master_key: MasterKey) -> AsyncIterator[Env]:
    accounts = Accounts(store)
    keys = {}
    for name, role in (("hana", Role.HELPDESK), ("sari", Role.SUPERVISOR), ("ade", Role.ADMIN)):
        keys[role] = await accounts.create_api_key(
            await accounts.create_user(name, role, PASSWORD), "tests"
        )
    settings = Settings(web=WebSettings(login_max_failures=MAX_FAILURES, login_ip_max_failures=100))
    registry = Registry(store, master_key=master_key, pin_policy=PinPolicy())
    made = Env(create_app(settings, store, registry, clock=clock), store, clock, keys)
    yield made
    for client in made.clients:
        await client.aclose()


async def _lock(env: Env, username: str) -> None:
    answers = [(await env.login(username, WRONG)).status_code for _ in range(MAX_FAILURES)]
    assert answers == [401] * (MAX_FAILURES - 1) + [429]
    assert (await env.login(username)).status_code == 429  # the right password too


# -- role boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hana", "sari"])
async def test_below_admin_the_users_page_and_its_forms_are_refused(env: Env, name: str) -> None:
    session = await env.session(name)
    page = await session.client.get("/users")
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    own = await session.client.get("/account/password")
    assert own.status_code == 200 and 'href="/users"' not in own.text
    attempts = [
        ("/users", {"username": "eve", "role": "admin", "password": NEW}),
        ("/users/ade/deactivate", {}),
        ("/users/ade/unlock", {}),
        ("/users/ade/password", {"password": NEW}),
    ]
    for url, data in attempts:  # with a valid CSRF token: the role alone refuses
        assert (await session.post(url, data)).status_code == 403, url
    role = Role.HELPDESK if name == "hana" else Role.SUPERVISOR
    api = await env.api(role, "/api/v1/users/ade/password", {"password": NEW})
    assert api.status_code == 403
    assert await env.user("eve") == {}
    assert (await env.user("ade"))["active"] is True
    assert (await env.login("ade")).status_code == 303  # the password did not change
    assert await env.audit("user.create", "user.deactivate", "user.password_reset") == []


async def test_admin_sees_the_page_and_the_nav_link(env: Env) -> None:
    admin = await env.session("ade")
    page = await admin.client.get("/users")
    assert page.status_code == 200 and 'href="/users"' in page.text
    for name in ("hana", "sari", "ade"):
        assert f'id="user-{name}"' in page.text
    # No reset or deactivate form for the admin's own row: that is /account/password.
    assert 'action="/users/ade/password"' not in page.text
    assert 'action="/users/ade/deactivate"' not in page.text
    assert 'action="/users/hana/password"' in page.text


async def test_without_the_csrf_token_nothing_changes(env: Env) -> None:
    admin = await env.session("ade")
    for csrf in (None, "0" * 64):
        data = {"password": NEW} if csrf is None else {"password": NEW, "csrf": csrf}
        answer = await admin.client.post("/users/hana/password", data=data)
        assert answer.status_code == 403 and "CSRF" in answer.text
        created = await admin.client.post(
            "/users", data={"username": "eve", "role": "admin", "password": NEW}
        )
        assert created.status_code == 403
    own = await admin.client.post(
        "/account/password", data={"current": PASSWORD, "new": NEW, "repeat": NEW}
    )
    assert own.status_code == 403
    # The JSON API with a session cookie wants the token in a header.
    api = await admin.client.post("/api/v1/users/hana/password", json={"password": NEW})
    assert api.status_code == 403
    assert await env.user("eve") == {}
    assert (await env.login("hana")).status_code == 303
    assert (await env.login("ade")).status_code == 303


# -- password rules ----------------------------------------------------------------------


async def test_a_short_password_gets_a_clear_error_in_both_languages(env: Env) -> None:
    admin = await env.session("ade")
    created = await admin.post(
        "/users", {"username": "dewi", "role": "helpdesk", "password": "x" * 9}
    )
    assert created.status_code == 422 and RULE_ID in created.text
    assert await env.user("dewi") == {}
    reset = await admin.post("/users/hana/password", {"password": "short"})
    assert reset.status_code == 422 and RULE_ID in reset.text
    own = await admin.post(
        "/account/password", {"current": PASSWORD, "new": "short", "repeat": "short"}
    )
    assert own.status_code == 422 and RULE_ID in own.text
    differ = await admin.post(
        "/account/password", {"current": PASSWORD, "new": NEW, "repeat": NEW + "x"}
    )
    assert differ.status_code == 422 and "Kedua kata sandi baru tidak sama." in differ.text
    api = await env.api(Role.ADMIN, "/api/v1/users/hana/password", {"password": "short"})
    assert api.status_code == 422 and "at least 10 characters" in api.text
    me = await env.api(
        Role.HELPDESK,
        "/api/v1/me/password",
        {"current_password": PASSWORD, "new_password": "short"},
    )
    assert me.status_code == 422
    english = await admin.post("/users/hana/password?lang=en", {"password": "short"})
    assert english.status_code == 422 and RULE_EN in english.text
    # None of these was a guess at the current password: nothing was counted.
    assert (await env.user("ade"))["failed_logins"] == 0
    assert (await env.login("hana")).status_code == 303
    assert (await env.login("ade")).status_code == 303


# -- admin actions -----------------------------------------------------------------------


async def test_a_reset_on_the_page_replaces_the_password_and_closes_sessions(env: Env) -> None:
    hana = await env.session("hana")
    admin = await env.session("ade")
    answer = await admin.post("/users/hana/password", {"password": NEW})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/users?done=password_was_reset&user=hana"
    shown = await admin.client.get(answer.headers["location"])
    assert "Kata sandi diatur ulang: <b>hana</b>" in shown.text
    assert (await hana.client.get("/api/v1/me")).status_code == 401
    assert (await env.login("hana", PASSWORD)).status_code == 401
    assert (await env.login("hana", NEW)).status_code == 303
    # API keys are not passwords: hana's key still works.
    me = await env.client().get("/api/v1/me", headers={"X-API-Key": env.keys[Role.HELPDESK]})
    assert me.status_code == 200
    assert await env.audit("user.password_reset") == [("ade", "user.password_reset", "hana")]


async def test_a_reset_through_the_api_and_its_limits(env: Env) -> None:
    answer = await env.api(Role.ADMIN, "/api/v1/users/sari/password", {"password": NEW})
    assert answer.status_code == 200 and answer.json() == {
        "username": "sari",
        "password_reset": True,
    }
    assert (await env.login("sari", PASSWORD)).status_code == 401
    assert (await env.login("sari", NEW)).status_code == 303
    own = await env.api(Role.ADMIN, "/api/v1/users/ade/password", {"password": NEW})
    assert own.status_code == 422 and "current" in own.json()["detail"]
    missing = await env.api(Role.ADMIN, "/api/v1/users/nobody/password", {"password": NEW})
    assert missing.status_code == 404
    assert await env.audit("user.password_reset") == [("ade", "user.password_reset", "sari")]


async def test_unlock_on_the_page_lifts_a_lock(env: Env) -> None:
    await _lock(env, "hana")
    admin = await env.session("ade")
    page = await admin.client.get("/users")
    row = page.text[page.text.index('id="user-hana"') :].split("</tr>")[0]
    assert 'action="/users/hana/unlock"' in row and "pill bad" in row
    assert 'action="/users/sari/unlock"' not in page.text  # only locked users get the button
    answer = await admin.post("/users/hana/unlock")
    assert answer.status_code == 303
    assert (await env.user("hana"))["locked_until"] is None
    assert (await env.login("hana")).status_code == 303
    after = await admin.client.get("/users")
    assert 'action="/users/hana/unlock"' not in after.text
    assert await env.audit("user.unlock") == [("ade", "user.unlock", "hana")]
    missing = await admin.post("/users/nobody/unlock")
    assert missing.status_code == 404 and "Tidak ditemukan." in missing.text


async def test_a_reset_also_lifts_a_lock(env: Env) -> None:
    await _lock(env, "hana")
    admin = await env.session("ade")
    assert (await admin.post("/users/hana/password", {"password": NEW})).status_code == 303
    assert (await env.login("hana", NEW)).status_code == 303


async def test_create_and_deactivate_on_the_page(env: Env) -> None:
    admin = await env.session("ade")
    created = await admin.post(
        "/users", {"username": "dewi", "role": "supervisor", "password": PASSWORD}
    )
    assert created.status_code == 303
    dewi = await env.session("dewi")
    me = (await dewi.client.get("/api/v1/me")).json()
    assert (me["username"], me["role"]) == ("dewi", "supervisor")
    again = await admin.post("/users", {"username": "dewi", "role": "helpdesk", "password": NEW})
    assert again.status_code == 422 and "already exists" in again.text
    bad_name = await admin.post(
        "/users", {"username": "Dewi!", "role": "helpdesk", "password": NEW}
    )
    assert bad_name.status_code == 422 and "username must be" in bad_name.text
    assert (await admin.post("/users/dewi/deactivate")).status_code == 303
    assert (await dewi.client.get("/api/v1/me")).status_code == 401
    assert (await env.login("dewi")).status_code == 401
    page = await admin.client.get("/users")
    assert 'action="/users/dewi/deactivate"' not in page.text
    assert await env.audit("user.create", "user.deactivate") == [
        ("ade", "user.create", "dewi"),
        ("ade", "user.deactivate", "dewi"),
    ]


# -- own password ------------------------------------------------------------------------


async def test_own_password_change_keeps_this_session_and_closes_the_others(env: Env) -> None:
    here = await env.session("hana")
    elsewhere = await env.session("hana")
    form = await here.client.get("/account/password")
    assert form.status_code == 200 and 'id="current"' in form.text
    wrong = await here.post("/account/password", {"current": WRONG, "new": NEW, "repeat": NEW})
    assert wrong.status_code == 400 and "Kata sandi saat ini salah." in wrong.text
    assert (await env.user("hana"))["failed_logins"] == 1  # counted like a failed login
    answer = await here.post("/account/password", {"current": PASSWORD, "new": NEW, "repeat": NEW})
    assert answer.status_code == 303
    done = await here.client.get(answer.headers["location"])
    assert done.status_code == 200 and "Kata sandi telah diganti." in done.text
    assert (await elsewhere.client.get("/api/v1/me")).status_code == 401
    assert (await env.user("hana"))["failed_logins"] == 0
    assert (await env.login("hana", PASSWORD)).status_code == 401
    assert (await env.login("hana", NEW)).status_code == 303
    assert await env.audit(
        "user.password_change", "user.password_change_failed", "session.login_failed"
    ) == [
        ("anonymous", "session.login_failed", "hana"),
        ("hana", "user.password_change_failed", "hana"),
        ("hana", "user.password_change", "hana"),
        ("anonymous", "session.login_failed", "hana"),
    ]


async def test_wrong_current_passwords_lock_the_name_like_failed_logins(env: Env) -> None:
    url = "/api/v1/me/password"
    wrong = {"current_password": WRONG, "new_password": NEW}
    answers = [(await env.api(Role.HELPDESK, url, wrong)) for _ in range(MAX_FAILURES)]
    assert [a.status_code for a in answers] == [400] * (MAX_FAILURES - 1) + [429]
    assert answers[-1].headers["retry-after"] == str(15 * 60)
    right = {"current_password": PASSWORD, "new_password": NEW}
    assert (await env.api(Role.HELPDESK, url, right)).status_code == 429
    assert (await env.login("hana")).status_code == 429  # the login form is locked too
    sari = await env.session("sari")  # another user is not affected
    assert (await sari.client.get("/account/password")).status_code == 200
    unlocked = await env.api(Role.ADMIN, "/api/v1/users/hana/unlock", {})
    assert unlocked.status_code == 200
    changed = await env.api(Role.HELPDESK, url, right)
    assert changed.status_code == 200 and changed.json()["password_changed"] is True
    assert (await env.login("hana", NEW)).status_code == 303
    reasons = [a for a in await env.audit("user.password_change_failed") if a[0] == "hana"]
    assert len(reasons) == MAX_FAILURES + 1


async def test_own_change_through_the_api_with_a_session_needs_csrf(env: Env) -> None:
    hana = await env.session("hana")
    body = {"current_password": PASSWORD, "new_password": NEW}
    assert (await hana.client.post("/api/v1/me/password", json=body)).status_code == 403
    answer = await hana.client.post(
        "/api/v1/me/password", json=body, headers={"X-CSRF-Token": hana.csrf}
    )
    assert answer.status_code == 200
    assert (await hana.client.get("/api/v1/me")).status_code == 200  # this session stays
    assert (await env.login("hana", NEW)).status_code == 303
