"""Issue 17 item 11: every list page and API route refuses a filter value it cannot use,
says so, and shows no unfiltered rows.

For each list, a bad value is tried next to a good request: the bad one must answer
4xx with a reason and carry none of the rows the good one shows."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from operator_data.api.auth import Role
from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_seed import CUSTOMER_ID, METER, PASSWORD

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        yield opened


# (url with a bad filter, url of the same list unfiltered: it has rows)
API = [
    ("/api/v1/messages?flow=bogus", "/api/v1/messages"),
    ("/api/v1/messages?state=bogus", "/api/v1/messages"),
    ("/api/v1/messages?direction=sideways", "/api/v1/messages"),
    ("/api/v1/messages?meter_number=12", "/api/v1/messages"),
    ("/api/v1/messages?customer_id=12", "/api/v1/messages"),
    ("/api/v1/messages?msisdn=abc", "/api/v1/messages"),
    ("/api/v1/messages?since=yesterday", "/api/v1/messages"),
    ("/api/v1/messages?cursor=zzz", "/api/v1/messages"),
    ("/api/v1/messages?limit=0", "/api/v1/messages"),
    ("/api/v1/incidents?state=bogus", "/api/v1/incidents?state=all"),
    ("/api/v1/incidents?limit=0", "/api/v1/incidents?state=all"),
    ("/api/v1/sim-swaps?state=pending", "/api/v1/sim-swaps"),
    ("/api/v1/sim-swaps?meter=1", "/api/v1/sim-swaps"),
    ("/api/v1/alarms?limit=0", "/api/v1/alarms?include_acknowledged=true"),
    (
        f"/api/v1/customers/{CUSTOMER_ID}/charges?from=bad",
        f"/api/v1/customers/{CUSTOMER_ID}/charges",
    ),
    (f"/api/v1/meters/{METER}/readings?limit=0", f"/api/v1/meters/{METER}/readings"),
]


@pytest.mark.parametrize(("bad", "good"), API)
async def test_the_api_refuses_a_bad_filter(env: Env, bad: str, good: str) -> None:
    headers = env.as_(Role.SUPERVISOR)
    shown = await env.client.get(good, headers=headers)
    assert shown.status_code == 200, shown.text
    refused = await env.client.get(bad, headers=headers)
    assert 400 <= refused.status_code < 500, (bad, refused.text)
    body = refused.json()
    assert set(body) == {"detail"} and body["detail"], bad  # a reason, and nothing else


async def _login(env: Env) -> None:
    answer = await env.client.post("/login", data={"username": "sari", "password": PASSWORD})
    assert answer.status_code == 303


def _rows(html: str) -> list[str]:
    """The data rows of the page's tables (a 'no data' row is not one)."""
    bodies = re.findall(r"<tbody>(.*?)</tbody>", html, re.S)
    rows = [r for b in bodies for r in re.findall(r"<tr[^>]*>(.*?)</tr>", b, re.S)]
    return [r for r in rows if 'class="muted"' not in r]


PAGES = [
    ("/messages?flow=bogus", "/messages", "Invalid filter: flow. Nothing is shown."),
    ("/messages?state=bogus", "/messages", "Invalid filter: state. Nothing is shown."),
    ("/messages?direction=x", "/messages", "Invalid filter: direction. Nothing is shown."),
    (
        "/messages?meter_number=12",
        "/messages",
        "Invalid filter: meter number (11 digits). Nothing is shown.",
    ),
    (
        "/messages?customer_id=1",
        "/messages",
        "Invalid filter: customer ID (12 digits). Nothing is shown.",
    ),
    ("/messages?msisdn=abc", "/messages", "Invalid filter: phone number. Nothing is shown."),
    ("/messages?from=2026-13-01", "/messages", "YYYY-MM-DD"),
    ("/messages?cursor=zzz", "/messages", "The page cursor is not valid."),
    ("/incidents?state=bogus", "/incidents?state=all", "Invalid filter."),
    ("/sim-swaps?state=pending", "/sim-swaps", "Unknown state; nothing is shown."),
]


@pytest.mark.parametrize(("bad", "good", "says"), PAGES)
async def test_a_page_says_why_and_shows_no_rows(env: Env, bad: str, good: str, says: str) -> None:
    await _login(env)
    shown = await env.client.get(good + ("&" if "?" in good else "?") + "lang=en")
    assert shown.status_code == 200 and _rows(shown.text), good
    refused = await env.client.get(bad + "&lang=en")
    assert refused.status_code in (400, 422), bad
    assert says in refused.text.replace("&#39;", "'"), bad
    assert _rows(refused.text) == [], bad


async def test_the_refusal_is_in_bahasa_indonesia_by_default(env: Env) -> None:
    await _login(env)
    refused = await env.client.get("/messages?flow=bogus&state=nope")
    assert refused.status_code == 422
    assert "Saringan tidak sah: status, alur. Tidak ada data yang ditampilkan." in refused.text


async def test_a_good_filter_still_filters(env: Env) -> None:
    await _login(env)
    page = await env.client.get("/messages?flow=hub_to_meter&lang=en")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert rows and all("hub → meter" in r for r in rows)
