"""The helpdesk web surface's protections, through real HTTP requests on the app: security
headers, API documentation from the package and behind `web.docs`, authentication and
size caps before a body is read, fixed notices, the customer reason in a POST body."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from operator_data.api.app import create_app
from operator_data.api.auth import Role
from operator_data.api.security_headers import PAGE_CSP
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings, WebSettings
from operator_data.store import Store, schema
from tests.operator_data.helpdesk_seed import (
    CUSTOMER_ID,
    METER,
    PASSWORD,
    RecordingActions,
    Seeded,
    seed,
)

pytestmark = pytest.mark.timeout(60)

TEMPLATES = Path(__file__).resolve().parents[2] / "operator_data" / "api" / "templates"


@dataclass(frozen=True)
class Template:
    db: Path
    master: MasterKey
    seeded: Seeded


@dataclass
class Env:
    client: httpx.AsyncClient
    seeded: Seeded
    store: Store
    actions: RecordingActions

    def key(self, role: Role = Role.HELPDESK) -> dict[str, str]:
        return {"X-API-Key": self.seeded.keys[role]}

    async def login(self, user: str = "sari") -> str:
        """Logs in (the session cookie stays in the client); the page's CSRF token."""
        answer = await self.client.post("/login", data={"username": user, "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        page = (await self.client.get("/")).text
        marker = 'name="csrf" value="'
        start = page.index(marker) + len(marker)
        return page[start : page.index('"', start)]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    db = tmp_path_factory.mktemp("template") / "hd.db"
    master = MasterKey(secrets.token_bytes(32))

    async def build() -> Seeded:
        async with Store(f"sqlite+aiosqlite:///{db}") as store:
            await store.migrate()
            registry = Registry(store, master_key=master, pin_policy=PinPolicy())
            return await seed(store, registry)

    return Template(db, master, asyncio.run(build()))


@pytest.fixture
def make_env(template: Template, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """An app over a copy of the seeded database, with `web` settings of the test's own."""
    db = tmp_path / "hd.db"
    shutil.copyfile(template.db, db)

    def make(**web: Any) -> Any:
        async def env() -> AsyncIterator[Env]:
            async with Store(f"sqlite+aiosqlite:///{db}") as store:
                registry = Registry(store, master_key=template.master, pin_policy=PinPolicy())
                actions = RecordingActions(registry)
                settings = Settings(web=WebSettings.model_validate(web))
                app = create_app(settings, store, registry, actions=actions)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://hd") as client:
                    yield Env(client, template.seeded, store, actions)

        return env()

    yield make


@pytest.fixture
async def env(make_env: Callable[..., Any]) -> AsyncIterator[Env]:
    async for each in make_env():
        yield each


# -- security headers --------------------------------------------------------------------


async def test_every_answer_carries_the_security_headers(env: Env) -> None:
    csrf = await env.login()
    answers = {
        "login page": await env.client.get("/login"),
        "home page": await env.client.get("/"),
        "transaction page": await env.client.get(f"/transactions/{env.seeded.complete_txn}"),
        "customer page": await env.client.post(
            f"/customers/{CUSTOMER_ID}", data={"csrf": csrf, "reason": "customer called"}
        ),
        "api json": await env.client.get(f"/api/v1/meters/{METER}", headers=env.key()),
        "api 401": await env.client.get("/api/v1/me", headers={"X-API-Key": "pk_0_nope"}),
        "not found": await env.client.get("/nowhere"),
        "stylesheet": await env.client.get("/static/pintar.css"),
    }
    for what, answer in answers.items():
        assert answer.status_code < 500, what
        headers = answer.headers
        assert headers["content-security-policy"] == PAGE_CSP, what
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff", what
        assert headers["referrer-policy"] == "no-referrer", what
        if what != "stylesheet":
            assert headers["cache-control"] == "no-store", what
    assert "cache-control" not in answers["stylesheet"].headers


def test_the_templates_hold_no_inline_script() -> None:
    """The policy allows scripts from files only: an inline one would not run."""
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8").lower()
        for start in range(len(text)):
            if text.startswith("<script", start):
                tag = text[start : text.index(">", start)]
                assert " src=" in tag, (template.name, tag)
        for handler in ("onclick=", "onload=", "onsubmit=", "onchange=", "javascript:"):
            assert handler not in text, (template.name, handler)


# -- API documentation -------------------------------------------------------------------


async def test_docs_are_served_from_the_package_when_public(
    make_env: Callable[..., Any],
) -> None:
    async for env in make_env(docs="public"):
        page = await env.client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower() and "https://" not in page.text
        assert "<script>" not in page.text  # only <script src=...>
        sources = ["/docs-assets/swagger-ui-bundle.js", "/static/swagger-init.js"]
        for src in [*sources, "/docs-assets/swagger-ui.css", "/docs-assets/redoc.standalone.js"]:
            asset = await env.client.get(src)
            assert asset.status_code == 200 and len(asset.content) > 100, src
        assert all(f'src="{src}"' in page.text for src in sources)
        redoc = await env.client.get("/redoc")
        assert redoc.status_code == 200 and "https://" not in redoc.text
        assert (await env.client.get("/openapi.json")).json()["info"]["title"]
        assert "pintar_outbox_pending" in (await env.client.get("/metrics")).text


async def test_docs_and_metrics_follow_the_setting(make_env: Callable[..., Any]) -> None:
    paths = ["/docs", "/redoc", "/openapi.json", "/metrics", "/docs-assets/swagger-ui.css"]
    async for env in make_env(docs="off"):
        for path in paths:
            assert (await env.client.get(path, headers=env.key(Role.ADMIN))).status_code == 404
    async for env in make_env():  # the default: any logged-in user or API key
        assert WebSettings().docs == "authenticated"
        for path in paths:
            assert (await env.client.get(path)).status_code == 401, path
            assert (await env.client.get(path, headers=env.key())).status_code == 200, path
        await env.login("hana")
        assert (await env.client.get("/docs")).status_code == 200


# -- before the body is read -------------------------------------------------------------


async def test_an_anonymous_body_is_refused_401_before_it_is_parsed(env: Env) -> None:
    alarm = env.seeded.alarm_ids[0]
    for body in (b"{not json", b'{"reason": 1}', b""):
        answer = await env.client.post(
            f"/api/v1/transactions/{env.seeded.stuck_txn}/resend-token",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 401, (body, answer.text)
    bad_key = {"X-API-Key": "pk_0000000000000000_nope", "content-type": "application/json"}
    answer = await env.client.post(f"/api/v1/alarms/{alarm}/ack", content=b"{", headers=bad_key)
    assert answer.status_code == 401
    # A page form without a session goes to the login page, unparsed.
    page = await env.client.post(f"/customers/{CUSTOMER_ID}", content=b"\xff" * 100)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert env.actions.resent == []


async def test_a_body_over_the_cap_is_413_without_being_read(
    make_env: Callable[..., Any],
) -> None:
    async for env in make_env(max_body_bytes=2048):
        url = f"/api/v1/transactions/{env.seeded.stuck_txn}/resend-token"
        headers = {**env.key(Role.SUPERVISOR), "content-type": "application/json"}
        fine = await env.client.post(url, json={"reason": "meter lost it"}, headers=headers)
        assert fine.status_code == 200
        pulled: list[int] = []
        body = _counting_body

        # Declared too large: answered from the header, not one chunk taken.
        declared = {**headers, "content-length": str(60 * 1024 * 1024)}
        answer = await env.client.post(url, content=body(60 * 1024, pulled), headers=declared)
        assert answer.status_code == 413 and "at most 2048 bytes" in answer.text
        assert pulled == []
        # Streamed without a length: refused as soon as it passes the cap.
        answer = await env.client.post(url, content=body(60 * 1024, pulled), headers=headers)
        assert answer.status_code == 413
        assert len(pulled) <= 4
        # The login form (anonymous) has the small cap whatever max_body_bytes says.
        login = await env.client.post("/login", content=b"u" * 5000)
        assert login.status_code == 413
    assert len(env.actions.resent) == 1


async def _counting_body(chunks: int, pulled: list[int]) -> AsyncIterator[bytes]:
    """A body of `chunks` KiB that notes each chunk the app pulls."""
    for n in range(chunks):
        pulled.append(n)
        yield b" " * 1024


def test_body_caps_are_settings() -> None:
    web = WebSettings()
    assert (web.max_body_bytes, web.max_push_body_bytes) == (64 * 1024, 4 * 1024)
    for field in ("docs", "max_body_bytes", "max_push_body_bytes"):
        assert WebSettings.model_fields[field].description
    with pytest.raises(ValueError):
        WebSettings(max_push_body_bytes=0)
    with pytest.raises(ValueError):
        WebSettings.model_validate({"docs": "sometimes"})


# -- notices and the customer reason -----------------------------------------------------


async def test_a_transaction_notice_is_a_fixed_text_for_a_code(env: Env) -> None:
    await env.login()
    url = f"/transactions/{env.seeded.complete_txn}"
    forged = await env.client.get(url, params={"done": "Hubungi 0812-0000 untuk refund"})
    assert forged.status_code == 200 and "Hubungi 0812-0000" not in forged.text
    assert 'class="notice"' not in forged.text
    known = await env.client.get(url, params={"done": "resent", "lang": "en"})
    assert "The token was queued again for the meter." in known.text


async def test_a_resend_from_the_page_redirects_with_a_code(env: Env) -> None:
    csrf = await env.login()
    answer = await env.client.post(
        f"/transactions/{env.seeded.stuck_txn}/resend",
        data={"csrf": csrf, "reason": "meter did not answer"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/transactions/{env.seeded.stuck_txn}?done=resent"
    assert len(env.actions.resent) == 1


async def test_the_reason_for_viewing_a_customer_goes_in_a_post(env: Env) -> None:
    csrf = await env.login("hana")
    url = f"/customers/{CUSTOMER_ID}"
    # In the URL it is not taken: the form is shown again and nothing is disclosed.
    via_url = await env.client.get(url, params={"reason": "customer called"})
    assert via_url.status_code == 200 and 'method="post"' in via_url.text
    assert 'name="csrf"' in via_url.text and "Budi S." not in via_url.text
    refused = await env.client.post(url, data={"csrf": "0" * 64, "reason": "customer called"})
    assert refused.status_code == 403 and "Budi S." not in refused.text
    short = await env.client.post(url, data={"csrf": csrf, "reason": "x"})
    assert short.status_code == 422 and "Budi S." not in short.text
    shown = await env.client.post(url, data={"csrf": csrf, "reason": "customer called"})
    assert shown.status_code == 200 and "Budi S." in shown.text
    log = schema.audit_log
    async with env.store.read() as conn:
        rows = (
            await conn.execute(
                select(log.c.actor, log.c.detail).where(log.c.subject_id == CUSTOMER_ID)
            )
        ).all()
    assert [(r.actor, r.detail.get("reason")) for r in rows] == [("hana", "customer called")]


async def test_the_api_takes_the_reason_in_a_body_too(env: Env) -> None:
    url = f"/api/v1/customers/{CUSTOMER_ID}/view"
    shown = await env.client.post(url, json={"reason": "customer called"}, headers=env.key())
    assert shown.status_code == 200 and shown.json()["customer"]["customer_id"] == CUSTOMER_ID
    for body in ({}, {"reason": "x"}, {"reason": "ok ok", "extra": 1}):
        assert (await env.client.post(url, json=body, headers=env.key())).status_code == 422
    # With a session (a browser) it is a form-less POST: the CSRF header is required.
    await env.login("hana")
    refused = await env.client.post(url, json={"reason": "customer called"})
    assert refused.status_code == 403
