"""User administration: the admin's /users page, the own-password page, and their JSON
twins (POST /api/v1/users/{name}/password, POST /api/v1/me/password, activate, role, API
keys). Role boundaries, CSRF, password rules, resets, unlocks, reactivation, role
changes and key revocation taking effect, the rules that keep an active admin, and the
audit trail. SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from operator_data.api.app import create_app
from operator_data.api.auth import Accounts, LastAdminError, OwnAccountError, Principal, Role
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

    async def get(self, role: Role, url: str) -> httpx.Response:
        return await self.client().get(url, headers={"X-API-Key": self.keys[role]})

    async def as_key(self, key: str) -> int:
        """What `/api/v1/me` answers to `key`: 200 while it works."""
        return (await self.client().get("/api/v1/me", headers={"X-API-Key": key})).status_code

    async def user(self, username: str) -> dict[str, Any]:
        async with self.store.read() as conn:
            row = (
                await conn.execute(
                    select(
                        api_users.c.active,
                        api_users.c.role,
                        api_users.c.failed_logins,
                        api_users.c.locked_until,
                    ).where(api_users.c.username == username)
                )
            ).first()
        return {} if row is None else dict(row._mapping)

    async def details(self, *actions: str) -> list[dict[str, Any]]:
        log = schema.audit_log
        async with self.store.read() as conn:
            rows = await conn.execute(
                select(log.c.actor, log.c.action, log.c.subject_id, log.c.detail).order_by(log.c.id)
            )
            found = [r for r in rows if r.action in actions]
        for row in found:  # no audit row ever carries a password or a key
            text = json.dumps(row.detail)
            assert all(p not in text for p in (PASSWORD, NEW, WRONG, *self.keys.values()))
        return [{"who": (r.actor, r.action, r.subject_id), **r.detail} for r in found]

    async def audit(self, *actions: str) -> list[tuple[str, str, str | None]]:
        return [d["who"] for d in await self.details(*actions)]


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
    [ade_key] = await Accounts(env.store).list_api_keys("ade")
    revoke = f"/users/ade/api-keys/{ade_key.key_id}/revoke"
    attempts = [
        ("/users", {"username": "eve", "role": "admin", "password": NEW}),
        ("/users/ade/deactivate", {}),
        ("/users/ade/unlock", {}),
        ("/users/ade/password", {"password": NEW}),
        ("/users/hana/activate", {}),
        (f"/users/{name}/role", {"role": "admin"}),
        ("/users/ade/role", {"role": "helpdesk"}),
        (revoke, {}),
        ("/users/hana/api-keys", {"label": "stolen"}),
    ]
    for url, data in attempts:  # with a valid CSRF token: the role alone refuses
        assert (await session.post(url, data)).status_code == 403, url
    role = Role.HELPDESK if name == "hana" else Role.SUPERVISOR
    api_attempts = [
        ("/api/v1/users/ade/password", {"password": NEW}),
        ("/api/v1/users/hana/activate", {}),
        (f"/api/v1/users/{name}/role", {"role": "admin"}),
        ("/api/v1/users/ade/role", {"role": "helpdesk"}),
        (f"/api/v1{revoke}", {}),
    ]
    for url, body in api_attempts:
        assert (await env.api(role, url, body)).status_code == 403, url
    assert (await env.get(role, "/api/v1/users/ade/api-keys")).status_code == 403
    assert await env.user("eve") == {}
    assert (await env.user("ade"))["active"] is True
    assert (await env.user("ade"))["role"] == "admin"
    assert (await env.user(name))["role"] == role.value
    assert await env.as_key(env.keys[Role.ADMIN]) == 200
    assert (await env.login("ade")).status_code == 303  # the password did not change
    assert (
        await env.audit(
            "user.create",
            "user.deactivate",
            "user.password_reset",
            "user.activate",
            "user.role",
            "api_key.revoke",
            "api_key.create",
        )
        == []
    )
    assert [k.label for k in await Accounts(env.store).list_api_keys("hana")] == ["tests"]


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
        issued = await admin.client.post(
            "/users/hana/api-keys", data={"label": "x"} | ({} if csrf is None else {"csrf": csrf})
        )
        assert issued.status_code == 403 and "pk_" not in issued.text
    own = await admin.client.post(
        "/account/password", data={"current": PASSWORD, "new": NEW, "repeat": NEW}
    )
    assert own.status_code == 403
    # The JSON API with a session cookie wants the token in a header.
    api = await admin.client.post("/api/v1/users/hana/password", json={"password": NEW})
    assert api.status_code == 403
    assert await env.user("eve") == {}
    assert [k.label for k in await Accounts(env.store).list_api_keys("hana")] == ["tests"]
    assert await env.audit("api_key.create") == []
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


# -- reactivation, roles, API keys -------------------------------------------------------


def _row(page: httpx.Response, username: str) -> str:
    return page.text[page.text.index(f'id="user-{username}"') :].split("</tr>")[0]


async def test_reactivate_on_the_page_and_through_the_api(env: Env) -> None:
    admin = await env.session("ade")
    assert (await admin.post("/users/hana/deactivate")).status_code == 303
    assert await env.as_key(env.keys[Role.HELPDESK]) == 401
    page = await admin.client.get("/users")
    assert 'action="/users/hana/activate"' in _row(page, "hana")
    assert 'action="/users/sari/activate"' not in page.text  # active users get no button
    answer = await admin.post("/users/hana/activate")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/users?done=user_activated&user=hana"
    assert (
        "Pengguna diaktifkan: <b>hana</b>"
        in (await admin.client.get(answer.headers["location"])).text
    )
    assert (await env.user("hana"))["active"] is True
    assert (await env.login("hana")).status_code == 303  # the password is unchanged
    assert await env.as_key(env.keys[Role.HELPDESK]) == 200  # the key was not revoked
    deactivated = await env.api(Role.ADMIN, "/api/v1/users/sari/deactivate", {})
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    activated = await env.api(Role.ADMIN, "/api/v1/users/sari/activate", {})
    assert activated.status_code == 200 and activated.json()["active"] is True
    assert (await env.login("sari")).status_code == 303
    assert (await env.api(Role.ADMIN, "/api/v1/users/nobody/activate", {})).status_code == 404
    missing = await admin.post("/users/nobody/activate")
    assert missing.status_code == 404 and "Tidak ditemukan." in missing.text
    details = await env.details("user.activate", "user.deactivate")
    assert [d["who"] for d in details] == [
        ("ade", "user.deactivate", "hana"),
        ("ade", "user.activate", "hana"),
        ("ade", "user.deactivate", "sari"),
        ("ade", "user.activate", "sari"),
    ]
    assert [(d["via"], d["was_active"]) for d in details] == [
        ("session", True),
        ("session", False),
        ("api_key", True),
        ("api_key", False),
    ]


async def test_a_role_change_holds_from_the_next_request_of_an_open_session(env: Env) -> None:
    hana = await env.session("hana")
    assert (await hana.client.get("/users")).status_code == 403
    admin = await env.session("ade")
    answer = await admin.post("/users/hana/role", {"role": "admin"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/users?done=role_changed&user=hana"
    # The session was not closed and needs no new login: the role is read per request.
    promoted = await hana.client.get("/users")
    assert promoted.status_code == 200 and 'href="/users"' in promoted.text
    assert 'action="/users/hana/role"' in _row(await admin.client.get("/users"), "hana")
    demoted = await env.api(Role.ADMIN, "/api/v1/users/hana/role", {"role": "helpdesk"})
    assert demoted.status_code == 200 and demoted.json()["role"] == "helpdesk"
    assert (await hana.client.get("/users")).status_code == 403
    assert (await hana.post("/users/sari/deactivate")).status_code == 403
    assert (await hana.client.get("/api/v1/me")).json()["role"] == "helpdesk"
    # An API key has no rights of its own either.
    assert (await env.get(Role.HELPDESK, "/api/v1/users")).status_code == 403
    bad = await env.api(Role.ADMIN, "/api/v1/users/hana/role", {"role": "root"})
    assert bad.status_code == 422
    assert (await admin.post("/users/hana/role", {"role": "root"})).status_code == 422
    assert (
        await env.api(Role.ADMIN, "/api/v1/users/nobody/role", {"role": "admin"})
    ).status_code == 404
    assert (await admin.post("/users/nobody/role", {"role": "admin"})).status_code == 404
    assert (await env.user("hana"))["role"] == "helpdesk" and (await env.user("sari"))["active"]
    details = await env.details("user.role")
    assert [(d["who"], d["from"], d["to"], d["via"]) for d in details] == [
        (("ade", "user.role", "hana"), "helpdesk", "admin", "session"),
        (("ade", "user.role", "hana"), "admin", "helpdesk", "api_key"),
    ]


async def test_api_keys_are_listed_without_secrets_and_revoked(env: Env) -> None:
    issued = await env.api(Role.ADMIN, "/api/v1/users/hana/api-keys", {"label": "grafana"})
    second, second_id = issued.json()["api_key"], issued.json()["key_id"]
    assert second.startswith(f"pk_{second_id}_")
    listed = await env.get(Role.ADMIN, "/api/v1/users/hana/api-keys")
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(k["label"], k["revoked_at"]) for k in items] == [("tests", None), ("grafana", None)]
    assert all(set(k) == {"key_id", "label", "created_at", "revoked_at"} for k in items)
    assert second not in listed.text and env.keys[Role.HELPDESK] not in listed.text
    first_id = items[0]["key_id"]
    assert env.keys[Role.HELPDESK].startswith(f"pk_{first_id}_")

    admin = await env.session("ade")
    page = await admin.client.get("/users")
    assert f'id="key-{first_id}"' in page.text and f'id="key-{second_id}"' in page.text
    assert f'action="/users/hana/api-keys/{second_id}/revoke"' in page.text
    assert second not in page.text and env.keys[Role.HELPDESK] not in page.text
    answer = await admin.post(f"/users/hana/api-keys/{second_id}/revoke")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/users?done=api_key_revoked&user=hana"
    assert await env.as_key(second) == 401
    assert await env.as_key(env.keys[Role.HELPDESK]) == 200  # the other key still works
    after = await admin.client.get("/users")
    assert f'action="/users/hana/api-keys/{second_id}/revoke"' not in after.text
    assert f'action="/users/hana/api-keys/{first_id}/revoke"' in after.text

    url = f"/api/v1/users/hana/api-keys/{first_id}/revoke"
    revoked = await env.api(Role.ADMIN, url, {})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert await env.as_key(env.keys[Role.HELPDESK]) == 401
    again = await env.api(Role.ADMIN, url, {})
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # revoked once, for good
    # A key is revoked only under the user it belongs to.
    wrong_user = await env.api(Role.ADMIN, f"/api/v1/users/sari/api-keys/{second_id}/revoke", {})
    assert wrong_user.status_code == 404
    unknown = await env.api(Role.ADMIN, "/api/v1/users/hana/api-keys/0123456789abcdef/revoke", {})
    assert unknown.status_code == 404
    not_an_id = await env.api(Role.ADMIN, "/api/v1/users/hana/api-keys/xyz/revoke", {})
    assert not_an_id.status_code == 422
    assert (await admin.post("/users/sari/api-keys/0123456789abcdef/revoke")).status_code == 404
    assert (await env.get(Role.ADMIN, "/api/v1/users/nobody/api-keys")).status_code == 404
    details = await env.details("api_key.create", "api_key.revoke")
    revoked_at = datetime.fromisoformat(revoked.json()["revoked_at"])
    assert [(d["who"], d["key_id"], d.get("was_revoked")) for d in details] == [
        (("ade", "api_key.create", "hana"), second_id, None),
        (("ade", "api_key.revoke", "hana"), second_id, None),
        (("ade", "api_key.revoke", "hana"), first_id, None),
        (("ade", "api_key.revoke", "hana"), first_id, revoked_at.isoformat()),
    ]


def _shown_key(page: httpx.Response) -> str:
    marker = 'id="new-key-value" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


async def test_an_admin_issues_a_key_on_the_page_and_sees_it_once(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await env.session("ade")
    page = await admin.client.get("/users")
    assert 'action="/users/hana/api-keys"' in _row(page, "hana")
    assert 'id="new-key"' not in page.text
    answer = await admin.post("/users/hana/api-keys", {"label": "grafana"})
    # Rendered, not redirected: a redirect would carry the key in a URL or lose it.
    assert answer.status_code == 200 and "location" not in answer.headers
    assert answer.headers["cache-control"] == "no-store"
    assert "Salin sekarang; kunci ini tidak dapat ditampilkan lagi." in answer.text
    key = _shown_key(answer)
    assert key.startswith("pk_") and answer.text.count(key) == 1
    assert all(key not in value for value in answer.headers.values())
    me = await env.client().get("/api/v1/me", headers={"X-API-Key": key})
    assert (
        me.status_code == 200 and me.json()["username"] == "hana" and me.json()["via"] == "api_key"
    )
    [_, new] = await Accounts(env.store).list_api_keys("hana")
    assert new.label == "grafana" and key.startswith(f"pk_{new.key_id}_")
    assert f'id="key-{new.key_id}"' in answer.text  # listed with the others already
    later = await admin.client.get("/users")
    assert key not in later.text and f'id="key-{new.key_id}"' in later.text
    # Every page is no-store now (security_headers.py), the one showing the key included.
    assert 'id="new-key"' not in later.text and later.headers["cache-control"] == "no-store"
    english = await admin.post("/users/sari/api-keys?lang=en", {"label": "backup"})
    assert english.status_code == 200 and "Copy it now; it cannot be shown again." in english.text
    other = _shown_key(english)
    assert await env.as_key(other) == 200 and other != key
    details = await env.details("api_key.create")
    assert [(d["who"], d["label"], d["key_id"], d["via"]) for d in details] == [
        (("ade", "api_key.create", "hana"), "grafana", new.key_id, "session"),
        (("ade", "api_key.create", "sari"), "backup", other.split("_")[1], "session"),
    ]
    assert all(k not in json.dumps(d) for d in details for k in (key, other))
    assert key not in caplog.text and other not in caplog.text


async def test_a_key_for_a_deactivated_or_unknown_user_or_bad_label_is_refused(env: Env) -> None:
    admin = await env.session("ade")
    assert (await admin.post("/users/sari/deactivate")).status_code == 303
    page = await admin.client.get("/users")
    assert 'action="/users/sari/api-keys"' not in page.text  # no form on an inactive row
    refused = await admin.post("/users/sari/api-keys", {"label": "x"})
    assert refused.status_code == 422 and "Pengguna ini nonaktif" in refused.text
    assert 'id="new-key"' not in refused.text and "pk_" not in refused.text
    api = await env.api(Role.ADMIN, "/api/v1/users/sari/api-keys", {"label": "x"})
    assert api.status_code == 422
    assert api.json()["detail"] == "user sari is deactivated: activate them first"
    missing = await admin.post("/users/nobody/api-keys", {"label": "x"})
    assert missing.status_code == 404 and "Tidak ditemukan." in missing.text
    assert (
        await env.api(Role.ADMIN, "/api/v1/users/nobody/api-keys", {"label": "x"})
    ).status_code == 404
    for label in ("", "x" * 101):
        bad = await admin.post("/users/hana/api-keys", {"label": label})
        assert bad.status_code == 422 and "Label harus 1-100 karakter." in bad.text
    assert (await admin.post("/users/Bad!/api-keys", {"label": "x"})).status_code == 422
    english = await admin.post("/users/sari/api-keys?lang=en", {"label": "x"})
    assert "This user is deactivated: activate them first" in english.text
    accounts = Accounts(env.store)
    assert [k.label for k in await accounts.list_api_keys("sari")] == ["tests"]
    assert [k.label for k in await accounts.list_api_keys("hana")] == ["tests"]
    assert await env.audit("api_key.create") == []


# -- an active admin always remains ------------------------------------------------------


async def test_an_admin_cannot_deactivate_or_demote_themselves(env: Env) -> None:
    own = await env.api(Role.ADMIN, "/api/v1/users/ade/deactivate", {})
    assert (
        own.status_code == 422 and own.json()["detail"] == "you cannot deactivate your own account"
    )
    demote = await env.api(Role.ADMIN, "/api/v1/users/ade/role", {"role": "supervisor"})
    assert demote.status_code == 422
    assert demote.json()["detail"] == "you cannot take the admin role from your own account"
    same = await env.api(Role.ADMIN, "/api/v1/users/ade/role", {"role": "admin"})
    assert same.status_code == 200  # staying admin takes nothing away
    admin = await env.session("ade")
    page = await admin.client.get("/users")
    row = _row(page, "ade")
    assert 'action="/users/ade/deactivate"' not in row and 'action="/users/ade/role"' not in row
    assert 'action="/users/sari/role"' in page.text
    for url, data in (("/users/ade/deactivate", {}), ("/users/ade/role", {"role": "helpdesk"})):
        refused = await admin.post(url, data)
        assert refused.status_code == 422
        assert "Anda tidak dapat menonaktifkan akun sendiri" in refused.text
    english = await admin.post("/users/ade/deactivate?lang=en", {})
    assert "You cannot deactivate your own account" in english.text
    assert await env.user("ade") == {
        "active": True,
        "role": "admin",
        "failed_logins": 0,
        "locked_until": None,
    }
    assert (await admin.client.get("/users")).status_code == 200  # the session is still open
    assert [w for w in await env.audit("user.deactivate", "user.role") if w[1] != "user.role"] == []


async def test_with_a_second_admin_either_may_go_but_not_both(env: Env, store: Store) -> None:
    accounts = Accounts(store)
    await accounts.create_user("budi", Role.ADMIN, PASSWORD)
    budi = await env.session("budi")
    page = await budi.client.get("/users")
    assert 'action="/users/ade/deactivate"' in page.text  # two admins: ade may go
    assert 'action="/users/budi/deactivate"' not in page.text
    assert (await budi.post("/users/ade/role", {"role": "supervisor"})).status_code == 303
    # budi is the last active admin now: the page offers no change of budi to anyone.
    page = await budi.client.get("/users")
    assert 'action="/users/budi/role"' not in page.text
    cli = "cli"  # an operator at the machine holds no account, so only the admin rule applies
    with pytest.raises(LastAdminError, match="budi is the last active admin"):
        await accounts.set_role("budi", Role.HELPDESK, actor=cli)
    with pytest.raises(LastAdminError):
        await accounts.set_active("budi", False, actor=cli)
    # An inactive admin does not count: ade, made admin again but deactivated, is no second.
    await accounts.set_role("ade", Role.ADMIN, actor=cli)
    await accounts.set_active("ade", False, actor=cli)
    with pytest.raises(LastAdminError):
        await accounts.set_active("budi", False, actor=cli)
    await accounts.set_active("ade", True, actor=cli)
    assert (await accounts.set_role("budi", Role.SUPERVISOR, actor=cli)) is not None
    assert [u.username for u in await accounts.list_users() if u.role is Role.ADMIN] == ["ade"]
    assert (await env.audit("user.role"))[-1] == ("cli", "user.role", "budi")


async def test_two_admins_demoting_each_other_at_once_leave_one(env: Env, store: Store) -> None:
    """On PostgreSQL both transactions really run side by side; the admin rows they lock
    first make the second one see the first one's change."""
    accounts = Accounts(store)
    await accounts.create_user("budi", Role.ADMIN, PASSWORD)
    ade, budi = await accounts.user_by_name("ade"), await accounts.user_by_name("budi")
    assert ade is not None and budi is not None
    for _ in range(5):
        outcomes = await asyncio.gather(
            accounts.set_role("budi", Role.HELPDESK, actor=Principal(ade, "session")),
            accounts.set_active("ade", False, actor=Principal(budi, "session")),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], LastAdminError), outcomes
        admins = [
            u.username for u in await accounts.list_users() if u.active and u.role is Role.ADMIN
        ]
        assert len(admins) == 1
        await accounts.set_role("budi", Role.ADMIN, actor="cli")
        await accounts.set_active("ade", True, actor="cli")
    with pytest.raises(OwnAccountError):
        await accounts.set_active("ade", False, actor=Principal(ade, "session"))
