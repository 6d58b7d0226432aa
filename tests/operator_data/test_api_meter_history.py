"""A meter's readings, alarms and purchases over the API: values as the meter sent them,
newest first, paged, explained, masked; and the errors bad requests get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from operator_data.api.auth import Role
from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_extra_seed import LATEST_CREDIT, READINGS, credit_at
from tests.operator_data.helpdesk_seed import CLEAR_TOKEN, CUSTOMER_ID, METER, OTHER_TOKEN

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        yield opened


def _urls() -> list[str]:
    return [
        f"/api/v1/meters/{METER}/readings",
        f"/api/v1/meters/{METER}/alarms",
        f"/api/v1/meters/{METER}/purchases",
        f"/api/v1/customers/{CUSTOMER_ID}/charges",
    ]


async def test_routes_need_credentials_and_every_role_may_read(env: Env) -> None:
    for url in [*_urls(), f"/api/v1/customers/{CUSTOMER_ID}/charges.csv"]:
        assert (await env.client.get(url)).status_code == 401, url
    for role in Role:
        for url in _urls():
            response = await env.client.get(url, headers=env.as_(role))
            assert response.status_code == 200, (role, url, response.text)
            assert CLEAR_TOKEN not in response.text and OTHER_TOKEN not in response.text


async def test_readings_newest_first_with_every_value(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    body = (await env.client.get(f"/api/v1/meters/{METER}/readings?limit=5", headers=h)).json()
    first = body["items"][0]
    assert first["credit_kwh"] == float(LATEST_CREDIT)
    assert first["total_kwh"] == 1500.0 and first["voltage_v"] == 221.5
    assert first["power_w"] == 450 and first["signal_csq"] == 7 and first["signal_weak"] is True
    assert body["items"][1]["signal_weak"] is False
    assert [r["credit_kwh"] for r in body["items"]] == [float(credit_at(i)) for i in range(5)]
    assert len(await env.audit("view.meter_readings")) == 1


async def test_readings_page_through_every_row_once(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    seen: list[int] = []
    cursor = ""
    while True:
        url = f"/api/v1/meters/{METER}/readings?limit=25" + (f"&cursor={cursor}" if cursor else "")
        body = (await env.client.get(url, headers=h)).json()
        seen.extend(r["id"] for r in body["items"])
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert len(seen) == READINGS == len(set(seen))


async def test_alarms_say_what_they_mean_in_both_languages(env: Env) -> None:
    body = (
        await env.client.get(f"/api/v1/meters/{METER}/alarms", headers=env.as_(Role.HELPDESK))
    ).json()
    assert [a["code"] for a in body["items"]] == ["LOW_CREDIT", "TAMPER"]  # newest first
    low = body["items"][0]
    assert low["meaning_id"].startswith("Kredit hampir habis")
    assert low["meaning_en"].startswith("Credit is running low")


async def test_purchases_show_kwh_and_only_the_masked_token(env: Env) -> None:
    body = (
        await env.client.get(f"/api/v1/meters/{METER}/purchases", headers=env.as_(Role.HELPDESK))
    ).json()
    assert [p["transaction_id"] for p in body["items"]] == [
        env.seeded.stuck_txn,
        env.seeded.complete_txn,
    ]
    done = body["items"][1]
    assert done["kwh"] == 34.5 and done["token_masked"] == "7391 **** **** **** 4608"
    assert done["state"] == "reported"


async def test_bad_meter_and_cursor_requests(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    assert (
        await env.client.get("/api/v1/meters/14000000099/readings", headers=h)
    ).status_code == 404
    assert (await env.client.get("/api/v1/meters/1400/readings", headers=h)).status_code == 422
    bad = await env.client.get(f"/api/v1/meters/{METER}/alarms?cursor=zzz", headers=h)
    assert bad.status_code == 400 and bad.json()["detail"] == "cursor is not valid"
    assert (
        await env.client.get(f"/api/v1/meters/{METER}/readings?limit=500", headers=h)
    ).status_code == 422
