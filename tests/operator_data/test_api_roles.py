"""Role boundaries of the operations API: who may see and do what, and the audit trail."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from operator_data.api.app import create_app
from operator_data.api.auth import Role
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings
from operator_data.store import Store, schema
from tests.operator_data.helpdesk_seed import (
    CLEAR_TOKEN,
    CUSTOMER_ID,
    CUSTOMER_NAME,
    METER,
    OTHER_TOKEN,
    PASSWORD,
    PHONE,
    RecordingActions,
    Seeded,
    seed,
)

pytestmark = pytest.mark.timeout(60)


@dataclass
class Env:
    client: httpx.AsyncClient
    seeded: Seeded
    store: Store
    actions: RecordingActions

    def as_(self, role: Role) -> dict[str, str]:
        return {"X-API-Key": self.seeded.keys[role]}


@dataclass(frozen=True)
class Template:
    db: Path
    master: MasterKey
    seeded: Seeded


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Migrate and seed once per module; each test works on its own copy of the file."""
    db = tmp_path_factory.mktemp("template") / "hd.db"
    master = MasterKey(secrets.token_bytes(32))

    async def build() -> Seeded:
        async with Store(f"sqlite+aiosqlite:///{db}") as store:
            await store.migrate()
            registry = Registry(store, master_key=master, pin_policy=PinPolicy())
            return await seed(store, registry)

    return Template(db, master, asyncio.run(build()))


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    db = tmp_path / "hd.db"
    shutil.copyfile(template.db, db)
    if template.db.with_name("hd.db-wal").exists():  # normally checkpointed on close
        shutil.copyfile(template.db.with_name("hd.db-wal"), tmp_path / "hd.db-wal")
    async with Store(f"sqlite+aiosqlite:///{db}") as store:
        registry = Registry(store, master_key=template.master, pin_policy=PinPolicy())
        actions = RecordingActions(registry)
        app = create_app(Settings(), store, registry, actions=actions)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hd") as client:
            yield Env(client, template.seeded, store, actions)


def _read_urls(s: Seeded) -> list[str]:
    return [
        "/api/v1/messages",
        f"/api/v1/messages?meter_number={METER}",
        f"/api/v1/meters/{METER}",
        f"/api/v1/customers/{CUSTOMER_ID}?reason=customer%20called",
        f"/api/v1/transactions/{s.complete_txn}",
        f"/api/v1/transactions/{s.stuck_txn}",
        "/api/v1/status",
        "/api/v1/ap2t/batches",
        "/api/v1/sla",
        "/api/v1/alarms?include_acknowledged=true",
        "/api/v1/me",
    ]


async def test_without_credentials_every_api_route_is_refused(env: Env) -> None:
    for url in _read_urls(env.seeded):
        assert (await env.client.get(url)).status_code == 401, url
    bad = {"X-API-Key": "pk_0000000000000000_nope"}
    assert (await env.client.get("/api/v1/me", headers=bad)).status_code == 401
    assert (
        await env.client.post(f"/api/v1/alarms/{env.seeded.alarm_ids[0]}/ack")
    ).status_code == 401


@pytest.mark.parametrize("role", list(Role))
async def test_no_role_ever_sees_a_clear_token(env: Env, role: Role) -> None:
    for url in _read_urls(env.seeded):
        response = await env.client.get(url, headers=env.as_(role))
        assert response.status_code == 200, (url, response.text)
        assert CLEAR_TOKEN not in response.text and OTHER_TOKEN not in response.text, url
    body = (
        await env.client.get(
            f"/api/v1/transactions/{env.seeded.complete_txn}", headers=env.as_(role)
        )
    ).json()
    assert body["transaction"]["token_masked"] == "7391 **** **** **** 4608"


async def test_helpdesk_can_never_act(env: Env) -> None:
    s = env.seeded
    h = env.as_(Role.HELPDESK)
    attempts = [
        (f"/api/v1/transactions/{s.complete_txn}/resend-token", {"reason": "meter lost it"}),
        (f"/api/v1/phones/{PHONE}/unlock-pin", None),
        (f"/api/v1/sim-swaps/{s.swap_id}/approve", None),
        (f"/api/v1/alarms/{s.alarm_ids[0]}/ack", None),
        ("/api/v1/users", {"username": "eve", "role": "admin", "password": "x" * 12}),
    ]
    for url, body in attempts:
        response = await env.client.post(url, json=body, headers=h)
        assert response.status_code == 403, url
    assert env.actions.resent == []
    async with env.store.read() as conn:
        alarm = (
            await conn.execute(select(schema.alarms).where(schema.alarms.c.id == s.alarm_ids[0]))
        ).one()
        phone = (
            await conn.execute(
                select(schema.customer_phones).where(schema.customer_phones.c.msisdn == PHONE)
            )
        ).one()
    assert alarm.acknowledged_at is None
    assert phone.locked_until is not None


async def test_helpdesk_sees_customer_data_masked_supervisor_in_full(env: Env) -> None:
    url = f"/api/v1/customers/{CUSTOMER_ID}?reason=customer%20called%20about%20token"
    helpdesk = (await env.client.get(url, headers=env.as_(Role.HELPDESK))).json()
    assert helpdesk["customer"]["name"] == "Budi S."
    assert helpdesk["phones"][0]["msisdn"] == "+62812*****890"
    assert PHONE not in str(helpdesk) and CUSTOMER_NAME not in str(helpdesk)
    assert helpdesk["phones"][0]["locked"] is True
    supervisor = (await env.client.get(url, headers=env.as_(Role.SUPERVISOR))).json()
    assert supervisor["customer"]["name"] == CUSTOMER_NAME
    assert supervisor["phones"][0]["msisdn"] == PHONE
    messages = (
        await env.client.get("/api/v1/messages?msisdn=081234567890", headers=env.as_(Role.HELPDESK))
    ).json()
    assert messages["items"] and all(
        m["peer_msisdn"] == "+62812*****890" for m in messages["items"]
    )


async def test_customer_view_needs_a_reason_and_is_audited(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    assert (await env.client.get(f"/api/v1/customers/{CUSTOMER_ID}", headers=h)).status_code == 422
    response = await env.client.get(
        f"/api/v1/customers/{CUSTOMER_ID}?reason=complaint%20%23881", headers=h
    )
    assert response.status_code == 200
    async with env.store.read() as conn:
        rows = (
            await conn.execute(
                select(schema.audit_log).where(schema.audit_log.c.action == "view.customer")
            )
        ).all()
    assert len(rows) == 1
    assert rows[0].actor == "hana" and rows[0].subject_id == CUSTOMER_ID
    assert rows[0].detail["reason"] == "complaint #881"
    assert rows[0].detail["role"] == "helpdesk"


async def test_supervisor_actions_take_effect_and_are_audited(env: Env) -> None:
    s = env.seeded
    sup = env.as_(Role.SUPERVISOR)
    resend = await env.client.post(
        f"/api/v1/transactions/{s.stuck_txn}/resend-token",
        json={"reason": "meter did not answer"},
        headers=sup,
    )
    assert resend.status_code == 200
    assert env.actions.resent == [(s.stuck_txn, "sari", "meter did not answer")]
    assert (
        await env.client.post(f"/api/v1/phones/{PHONE}/unlock-pin", headers=sup)
    ).status_code == 200
    ack = await env.client.post(f"/api/v1/alarms/{s.alarm_ids[0]}/ack", headers=sup)
    assert ack.status_code == 200
    # Four eyes: sari requested the swap, so sari may not approve it; ade (admin) may.
    own = await env.client.post(f"/api/v1/sim-swaps/{s.swap_id}/approve", headers=sup)
    assert own.status_code == 422
    other = await env.client.post(
        f"/api/v1/sim-swaps/{s.swap_id}/approve", headers=env.as_(Role.ADMIN)
    )
    assert other.status_code == 200
    async with env.store.read() as conn:
        phone = (
            await conn.execute(
                select(schema.customer_phones).where(schema.customer_phones.c.msisdn == PHONE)
            )
        ).one()
        alarm = (
            await conn.execute(select(schema.alarms).where(schema.alarms.c.id == s.alarm_ids[0]))
        ).one()
        actions = set(
            (
                await conn.execute(
                    select(schema.audit_log.c.action, schema.audit_log.c.actor).where(
                        schema.audit_log.c.action.like("action.%")
                    )
                )
            ).all()
        )
    assert phone.locked_until is None
    assert alarm.acknowledged_by == "sari"
    assert {
        ("action.resend_token", "sari"),
        ("action.unlock_pin", "sari"),
        ("action.acknowledge_alarm", "sari"),
        ("action.approve_sim_swap", "ade"),
    } <= actions
    listed = await env.client.get("/api/v1/alarms", headers=sup)
    assert [a["id"] for a in listed.json()["items"]] == [s.alarm_ids[1]]


async def test_without_the_hub_a_resend_is_unavailable(tmp_path: Path) -> None:
    async with Store(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}") as store:
        await store.migrate()
        registry = Registry(
            store, master_key=MasterKey(secrets.token_bytes(32)), pin_policy=PinPolicy()
        )
        seeded = await seed(store, registry, extra_messages=0)
        app = create_app(Settings(), store, registry)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hd"
        ) as client:
            response = await client.post(
                f"/api/v1/transactions/{seeded.stuck_txn}/resend-token",
                json={"reason": "meter did not answer"},
                headers={"X-API-Key": seeded.keys[Role.SUPERVISOR]},
            )
    assert response.status_code == 503


async def test_only_admin_manages_users_and_keys(env: Env) -> None:
    new = {"username": "dewi", "role": "helpdesk", "password": "panjang-sekali-1"}
    for role in (Role.HELPDESK, Role.SUPERVISOR):
        assert (await env.client.get("/api/v1/users", headers=env.as_(role))).status_code == 403
        assert (await env.client.get("/api/v1/config", headers=env.as_(role))).status_code == 403
        assert (
            await env.client.post("/api/v1/users", json=new, headers=env.as_(role))
        ).status_code == 403
    admin = env.as_(Role.ADMIN)
    created = await env.client.post("/api/v1/users", json=new, headers=admin)
    assert created.status_code == 201
    assert (await env.client.post("/api/v1/users", json=new, headers=admin)).status_code == 409
    key = (
        await env.client.post("/api/v1/users/dewi/api-keys", json={"label": "x"}, headers=admin)
    ).json()["api_key"]
    me = await env.client.get("/api/v1/me", headers={"X-API-Key": key})
    assert me.json()["username"] == "dewi" and me.json()["role"] == "helpdesk"
    assert (
        await env.client.post("/api/v1/users/dewi/deactivate", headers=admin)
    ).status_code == 200
    assert (await env.client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 401
    config = (await env.client.get("/api/v1/config", headers=admin)).json()
    assert "security" not in config and config["sla"]["meter_answer_s"] == 300.0
    async with env.store.read() as conn:
        stored = (
            (await conn.execute(select(schema.metadata.tables["api_keys"].c.key_hash)))
            .scalars()
            .all()
        )
        hashes = (
            (await conn.execute(select(schema.metadata.tables["api_users"].c.password_hash)))
            .scalars()
            .all()
        )
    assert key not in stored and all(h.startswith("scrypt$") for h in hashes)
    assert all(PASSWORD not in h for h in hashes)


async def test_browser_session_needs_csrf_for_writes(env: Env) -> None:
    login = await env.client.post("/login", data={"username": "sari", "password": PASSWORD})
    assert login.status_code == 303
    assert "pintar_session" in env.client.cookies
    me = await env.client.get("/api/v1/me")
    assert me.json()["via"] == "session"
    missing = await env.client.get("/transactions/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert missing.status_code == 404 and "Tidak ditemukan." in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    url = f"/api/v1/alarms/{env.seeded.alarm_ids[0]}/ack"
    assert (await env.client.post(url)).status_code == 403
    wrong = await env.client.post(url, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    import hashlib

    csrf = hashlib.sha256(b"csrf:" + env.client.cookies["pintar_session"].encode()).hexdigest()
    assert (await env.client.post(url, headers={"X-CSRF-Token": csrf})).status_code == 200
    wrong_password = await env.client.post(
        "/login", data={"username": "sari", "password": "salah-salah-salah"}
    )
    assert wrong_password.status_code == 401
