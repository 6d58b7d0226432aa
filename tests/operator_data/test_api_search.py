"""Message search with keyset pagination, timelines, the transaction view with SLA
status, the SLA dashboard, health and Prometheus metrics — on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from operator_data.api.app import create_app
from operator_data.api.auth import Role
from operator_data.api.present import wib_day_start
from operator_data.api.queries import encode_cursor
from operator_data.api.routers.pages import classify
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings, WebSettings
from operator_data.store import Store, utcnow
from tests.operator_data.helpdesk_seed import CUSTOMER_ID, METER, METER_SIM, Seeded, seed

pytestmark = pytest.mark.timeout(60)

# /metrics and /openapi.json are read without credentials here (web.docs = "public").
_OPEN_DOCS = Settings(web=WebSettings(docs="public"))


@pytest.fixture
async def api(store: Store) -> AsyncIterator[tuple[httpx.AsyncClient, Seeded]]:
    async with _seeded_api(store) as pair:
        yield pair


@asynccontextmanager
async def _seeded_api(
    store: Store, now: datetime | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Seeded]]:
    """The seed (up to `now`) and a helpdesk client of an app whose clock is `now`."""
    registry = Registry(
        store, master_key=MasterKey(secrets.token_bytes(32)), pin_policy=PinPolicy()
    )
    seeded = await seed(store, registry, extra_messages=7, now=now)
    clock = {} if now is None else {"clock": lambda: now}
    app = create_app(_OPEN_DOCS, store, registry, **clock)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://hd",
        headers={"X-API-Key": seeded.keys[Role.HELPDESK]},
    ) as client:
        yield client, seeded


async def _all_pages(client: httpx.AsyncClient, query: str, limit: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    for _ in range(50):
        url = f"/api/v1/messages?{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url)).json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def test_keyset_pages_cover_every_message_once_newest_first(
    api: tuple[httpx.AsyncClient, Seeded],
) -> None:
    client, seeded = api
    items = await _all_pages(client, f"meter_number={METER}", limit=3)
    ids = [str(i["id"]) for i in items]
    assert len(ids) == len(set(ids)) == seeded.message_count
    stamps = [str(i["created_at"]) for i in items]
    assert stamps == sorted(stamps, reverse=True)


async def test_search_filters(api: tuple[httpx.AsyncClient, Seeded]) -> None:
    client, seeded = api
    by_sim = await _all_pages(client, "msisdn=08112000001", limit=50)  # local form normalised
    assert by_sim and {i["meter_number"] for i in by_sim} == {METER}
    by_flow = await _all_pages(client, "flow=hub_to_meter", limit=50)
    assert {i["kind"] for i in by_flow} == {"token_delivery"} and len(by_flow) == 2
    by_txn = await _all_pages(client, f"transaction_id={seeded.complete_txn}", limit=50)
    assert {i["kind"] for i in by_txn} == {"token_delivery", "token_result"}
    by_state = await _all_pages(client, "state=sent", limit=50)
    assert [i["transaction_id"] for i in by_state] == [seeded.complete_txn]
    since = (seeded.now - timedelta(hours=1)).isoformat()
    recent = await _all_pages(client, "since=" + since.replace("+", "%2B"), limit=50)
    assert [i["transaction_id"] for i in recent] == [seeded.stuck_txn]
    customer = await _all_pages(client, f"customer_id={CUSTOMER_ID}&direction=in", limit=50)
    assert customer and all(i["direction"] == "in" for i in customer)


async def test_bad_search_input_is_a_client_error(api: tuple[httpx.AsyncClient, Seeded]) -> None:
    client, _ = api
    for url in (
        "/api/v1/messages?cursor=bm9wZQ",
        "/api/v1/messages?cursor=%%%",
        "/api/v1/messages?msisdn=abc",
        "/api/v1/messages?meter_number=123",
        "/api/v1/messages?since=2026-01-01T00:00:00",
        "/api/v1/messages?since=0001-01-01T00:00:00%2B14:00",
        "/api/v1/messages?until=9999-12-31T23:59:59-12:00",
        "/api/v1/messages?cursor="
        + encode_cursor(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=9))), "X"),
        "/api/v1/messages?flow=carrier_pigeon",
        "/api/v1/meters/99999999999",
        "/api/v1/transactions/01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ):
        response = await client.get(url)
        assert 400 <= response.status_code < 500, url


async def test_transaction_view_shows_stages_sla_and_where_it_stopped(
    api: tuple[httpx.AsyncClient, Seeded],
) -> None:
    client, seeded = api
    done = (await client.get(f"/api/v1/transactions/{seeded.complete_txn}")).json()
    assert [s["state"] for s in done["stages"]] == [
        "requested",
        "submitted",
        "token_issued",
        "token_sent",
        "applied",
        "reported",
    ]
    assert {c["metric"]: c["status"] for c in done["sla"]} == {
        "token_to_network": "met",
        "meter_answer": "met",
        "report_to_p2apst": "met",
    }
    assert done["terminal"] is True and done["stopped_at"] is None
    stuck = (await client.get(f"/api/v1/transactions/{seeded.stuck_txn}")).json()
    assert stuck["stopped_at"] == "token_sent"
    assert set(stuck["next_expected"]) == {"applied", "meter_rejected", "meter_timeout"}
    sla = {c["metric"]: c["status"] for c in stuck["sla"]}
    # 30 minutes without the meter's answer against a 300 s target.
    assert sla == {
        "token_to_network": "met",
        "meter_answer": "breached",
        "report_to_p2apst": "not_applicable",
    }


async def test_meter_timeline_interleaves_sms_stages_and_alarms(
    api: tuple[httpx.AsyncClient, Seeded],
) -> None:
    client, _ = api
    body = (await client.get(f"/api/v1/meters/{METER}")).json()
    assert body["sim"]["msisdn"] != METER_SIM  # masked for helpdesk
    events = body["timeline"]
    categories = {e["category"] for e in events}
    assert categories == {"sms", "transaction", "alarm"}
    stamps = [e["at"] for e in events]
    assert stamps == sorted(stamps, reverse=True)
    issued = [e for e in events if e["title"] == "token_issued"]
    assert {e["detail"] for e in issued} == {
        "token 7391 **** **** **** 4608",
        "token 5551 **** **** **** 9384",
    }


async def test_sla_dashboard_counts_today_and_lists_breaches(
    api: tuple[httpx.AsyncClient, Seeded],
) -> None:
    client, seeded = api
    body = (await client.get("/api/v1/sla")).json()
    month = {s["metric"]: s for s in body["this_month"]}
    assert month["meter_answer"]["met"] == 1 and month["meter_answer"]["breached"] == 1
    # From the state histories (issue 17): the stuck purchase breached two stages; the
    # complete one's receipt SMS was never sent (the seed has none), so it is overdue.
    by_subject: dict[str, set[str]] = {}
    for b in body["breaches"]:
        by_subject.setdefault(b["subject_id"], set()).add(b["metric"])
    assert by_subject == {
        seeded.stuck_txn: {"token_to_network", "meter_answer"},
        seeded.complete_txn: {"receipt_to_customer"},
    }
    assert len(body["daily"]) == 14
    assert sum(d["sms"] for d in body["daily"]) == seeded.message_count


@pytest.fixture
async def api_today(store: Store) -> AsyncIterator[tuple[httpx.AsyncClient, Seeded]]:
    """The seed and an app whose clock stands where all of the seed is "today" (WIB):
    the seed spans two hours, so just after midnight WIB the clock is put at 03:00."""
    real = utcnow()
    async with _seeded_api(store, max(real, wib_day_start(real) + timedelta(hours=3))) as pair:
        yield pair


async def test_health_readiness_and_metrics(
    api_today: tuple[httpx.AsyncClient, Seeded],
) -> None:
    client, _ = api_today
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    text = (await client.get("/metrics")).text
    assert 'pintar_sms_today{direction="out",flow="hub_to_meter",state="sent"} 1.0' in text
    assert "pintar_outbox_pending 2.0" in text
    assert 'pintar_sla_breaches_today{metric="meter_answer"}' in text
    assert "openapi" in (await client.get("/openapi.json")).text


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}") as opened:
        await opened.migrate()
        yield opened


async def test_two_apps_in_one_process_have_separate_metrics(sqlite_store: Store) -> None:
    store = sqlite_store
    registry = Registry(store, master_key=None, pin_policy=PinPolicy())
    first = create_app(_OPEN_DOCS, store, registry)
    second = create_app(_OPEN_DOCS, store, registry)
    for app in (first, second):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hd"
        ) as client:
            assert "pintar_outbox_pending 0.0" in (await client.get("/metrics")).text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("14000000001", ("meter", "14000000001")),
        ("1400 0000 001", ("meter", "14000000001")),
        ("530000000001", ("customer", "530000000001")),
        ("0812-3456-7890", ("msisdn", "+6281234567890")),
        ("+6281234567890", ("msisdn", "+6281234567890")),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", ("transaction", "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
        ("budi", None),
        ("", None),
    ],
)
def test_search_box_classifies_input(query: str, expected: tuple[str, str] | None) -> None:
    assert classify(query) == expected


async def test_extra_routers_are_mounted(sqlite_store: Store) -> None:
    store = sqlite_store
    from fastapi import APIRouter

    extra = APIRouter()

    @extra.get("/push/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    registry = Registry(store, master_key=None, pin_policy=PinPolicy())
    app = create_app(_OPEN_DOCS, store, registry, extra_routers=[extra])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hd"
    ) as client:
        assert (await client.get("/push/ping")).json() == {"pong": "yes"}


async def test_errors_are_html_for_pages_and_json_elsewhere(
    api: tuple[httpx.AsyncClient, Seeded],
) -> None:
    client, _ = api
    page = await client.get("/transactions/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert page.status_code == 303  # pages need a browser session: off to /login
    api_404 = await client.get("/api/v1/transactions/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert api_404.status_code == 404 and "does not exist" in api_404.json()["detail"]
    unknown = await client.get("/nowhere")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}
