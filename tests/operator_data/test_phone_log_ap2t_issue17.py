"""Issue 17: a stuck purchase is linked from the customer's phone log, and the AP2T batch
history shows the batches (every revision) under `pintar helpdesk serve`."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from operator_data.api.auth import Role
from operator_data.cli.helpdesk_cmd import build_app
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings
from operator_data.store import Flow, Store, TransactionState
from operator_data.store.messages import record_inbound
from operator_data.store.reporting_schema import ap2t_batches
from operator_data.store.transactions import create_transaction, set_transaction_state
from tests.operator_data.helpdesk_seed import (
    CUSTOMER_ID,
    METER,
    PASSWORD,
    PHONE,
    PHONE_LOCAL,
    Seeded,
    seed,
)

pytestmark = pytest.mark.timeout(60)


async def _stuck_purchase(store: Store, seeded: Seeded) -> str:
    """BELI from the customer's phone; P2APST never answered (no token, no SMS out)."""
    at = seeded.now - timedelta(minutes=12)
    async with store.begin() as conn:
        request, _ = await record_inbound(
            conn,
            flow=Flow.CUSTOMER_TO_HUB,
            idempotency_key="in-stuck",
            peer_msisdn=PHONE,
            peer_raw=PHONE_LOCAL,
            customer_id=CUSTOMER_ID,
            meter_number=METER,
            kind="BELI",
            body="BELI 14000000001 20000",
            at=at,
        )
        tx, _ = await create_transaction(
            conn,
            idempotency_key="buy-stuck",
            meter_number=METER,
            customer_id=CUSTOMER_ID,
            amount_idr=20_000,
            phone_msisdn=PHONE,
            request_message_id=request.id,
            at=at + timedelta(milliseconds=5),
        )
        await set_transaction_state(conn, tx.id, TransactionState.SUBMITTED, at=at + _ms(40))
    return tx.id


def _ms(n: int) -> timedelta:
    return timedelta(milliseconds=n)


@asynccontextmanager
async def _client(app: FastAPI, seeded: Seeded, *, login: bool) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://hd",
        headers={} if login else {"X-API-Key": seeded.keys[Role.HELPDESK]},
    ) as client:
        if login:
            done = await client.post("/login", data={"username": "hana", "password": PASSWORD})
            assert done.status_code == 303, done.text
        yield client


@pytest.fixture
async def served(store: Store) -> AsyncIterator[tuple[FastAPI, Seeded]]:
    """The app `pintar helpdesk serve` runs, over the seeded store."""
    registry = Registry(
        store, master_key=MasterKey(secrets.token_bytes(32)), pin_policy=PinPolicy()
    )
    seeded = await seed(store, registry)
    yield build_app(Settings(), store, registry), seeded


async def test_the_phone_log_links_a_stuck_purchase(served: tuple[FastAPI, Seeded]) -> None:
    app, seeded = served
    stuck = await _stuck_purchase(app.state.ctx.store, seeded)
    async with _client(app, seeded, login=False) as client:
        page = (await client.get("/api/v1/messages", params={"msisdn": PHONE})).json()
    requests = [i for i in page["items"] if i["kind"] == "BELI"]
    assert len(requests) == 2, page
    # Newest first: the stuck one, then the completed one, each with its transaction.
    assert [r["transaction_id"] for r in requests] == [stuck, seeded.complete_txn]
    async with _client(app, seeded, login=True) as client:
        html = (await client.get("/messages?msisdn=" + quote(PHONE))).text
    assert f'href="/transactions/{stuck}"' in html
    assert f'href="/transactions/{seeded.complete_txn}"' in html


async def test_a_request_without_a_purchase_is_not_linked(served: tuple[FastAPI, Seeded]) -> None:
    """The link is by the request's message id: a customer SMS that started no purchase
    stays unlinked."""
    app, seeded = served
    async with app.state.ctx.store.begin() as conn:
        await record_inbound(
            conn,
            flow=Flow.CUSTOMER_TO_HUB,
            idempotency_key="in-saldo",
            peer_msisdn=PHONE,
            customer_id=CUSTOMER_ID,
            kind="SALDO",
            body="SALDO",
            at=seeded.now - timedelta(minutes=5),
        )
    async with _client(app, seeded, login=False) as client:
        page = (await client.get("/api/v1/messages", params={"msisdn": PHONE})).json()
    saldo = [i for i in page["items"] if i["kind"] == "SALDO"]
    assert [i["transaction_id"] for i in saldo] == [None]


async def _batches(store: Store, seeded: Seeded) -> None:
    """Day 1 acknowledged, then a correction revision of it not yet acknowledged."""
    day = (seeded.now - timedelta(days=1)).date()
    async with store.begin() as conn:
        for revision, name, acked in ((1, "ap2t-a.csv", True), (2, "ap2t-a-r2.csv", False)):
            await conn.execute(
                ap2t_batches.insert().values(
                    day=day,
                    revision=revision,
                    supersedes=None if revision == 1 else 1,
                    generated_at=seeded.now - timedelta(hours=revision),
                    file=name,
                    sha256="0" * 64,
                    record_count=3,
                    corrections=0,
                    acknowledged_at=seeded.now - timedelta(minutes=30) if acked else None,
                    receipt="R1" if acked else None,
                    delivery="dir:/tmp",
                )
            )


async def test_helpdesk_serve_shows_the_ap2t_history(served: tuple[FastAPI, Seeded]) -> None:
    app, seeded = served
    async with _client(app, seeded, login=False) as client:
        empty = (await client.get("/api/v1/ap2t/batches")).json()
    assert empty == {"batches": []}
    await _batches(app.state.ctx.store, seeded)
    async with _client(app, seeded, login=False) as client:
        listed = (await client.get("/api/v1/ap2t/batches")).json()["batches"]
    assert [(b["batch_id"], b["state"]) for b in listed] == [
        ("ap2t-a-r2.csv", "exported"),
        ("ap2t-a.csv", "acknowledged"),
    ]
    assert {b["records"] for b in listed} == {3}
    async with _client(app, seeded, login=True) as client:
        html = (await client.get("/status?lang=id")).text
    history = html[html.index("Riwayat batch AP2T") :]
    assert "<td>ap2t-a-r2.csv</td>" in history and "<td>ap2t-a.csv</td>" in history
    assert "Tidak ada data" not in history
