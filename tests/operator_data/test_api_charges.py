"""A customer's SMS charges over the API: totals that add up to the ledger, paging, the
period rules, and the CSV export (supervisor) with its cells defused."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from operator_data.api.auth import Role
from operator_data.api.present import WIB
from operator_data.csv_cells import restore
from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_extra_seed import FORMULA_PRICE
from tests.operator_data.helpdesk_seed import CUSTOMER_ID

pytestmark = pytest.mark.timeout(60)

URL = f"/api/v1/customers/{CUSTOMER_ID}/charges"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        yield opened


def _period(env: Env) -> str:
    """Yesterday and today (WIB): every seeded charge, whatever the time of day."""
    today = env.seeded.now.astimezone(WIB).date()
    return f"from={(today - timedelta(days=1)).isoformat()}&until={today.isoformat()}"


async def test_totals_add_up_to_the_ledger(env: Env) -> None:
    body = (await env.client.get(f"{URL}?{_period(env)}", headers=env.as_(Role.HELPDESK))).json()
    charged = env.extra.charged_messages
    assert body["sms_count"] == len(charged) and body["amount_idr"] == env.extra.charge_total_idr
    assert sum(g["amount_idr"] for g in body["groups"]) == env.extra.charge_total_idr
    assert {g["flow"] for g in body["groups"]} == {"customer_to_hub", "meter_to_hub"}
    assert {c["message_id"] for c in body["items"]} == set(charged)
    stamps = [c["charged_at"] for c in body["items"]]
    assert stamps == sorted(stamps, reverse=True)
    (row,) = await env.audit("view.charges")
    assert row.subject_id == CUSTOMER_ID and row.actor == "hana"


async def test_charges_page_with_a_cursor(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    first = (await env.client.get(f"{URL}?{_period(env)}&limit=3", headers=h)).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    ids = [c["message_id"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (
            await env.client.get(f"{URL}?{_period(env)}&limit=3&cursor={cursor}", headers=h)
        ).json()
        ids.extend(c["message_id"] for c in page["items"])
        cursor = page["next_cursor"]
        assert page["sms_count"] == len(env.extra.charged_messages)  # totals: the whole period
    assert sorted(ids) == sorted(env.extra.charged_messages)


async def test_a_period_without_charges_is_empty_not_an_error(env: Env) -> None:
    body = (
        await env.client.get(
            f"{URL}?from=2020-01-01&until=2020-01-31", headers=env.as_(Role.HELPDESK)
        )
    ).json()
    assert body["items"] == [] and body["groups"] == [] and body["amount_idr"] == 0


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("from=2026-13-01", "from must be a date"),
        ("from=2026-02-10&until=2026-02-01", "until is before from"),
        ("from=2026-01-01&until=2026-06-30", "at most 93 days"),
        ("until=yesterday", "until must be a date"),
        ("from=9999-12-31&until=9999-12-31", "between 2000-01-01 and 2099-12-31"),
        ("from=0001-01-01", "between 2000-01-01 and 2099-12-31"),
    ],
)
async def test_bad_periods_are_refused_with_the_reason(env: Env, query: str, says: str) -> None:
    for url in (f"{URL}?{query}", f"{URL}.csv?{query}"):
        response = await env.client.get(url, headers=env.as_(Role.SUPERVISOR))
        assert response.status_code == 422, url
        assert says in response.json()["detail"]


async def test_unknown_customer_is_404(env: Env) -> None:
    h = env.as_(Role.SUPERVISOR)
    assert (
        await env.client.get("/api/v1/customers/530000000099/charges", headers=h)
    ).status_code == 404
    assert (await env.client.get("/api/v1/customers/12/charges", headers=h)).status_code == 422


async def test_csv_export_is_for_supervisors_and_defuses_formulas(env: Env) -> None:
    url = f"{URL}.csv?{_period(env)}"
    assert (await env.client.get(url, headers=env.as_(Role.HELPDESK))).status_code == 403
    response = await env.client.get(url, headers=env.as_(Role.SUPERVISOR))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"sms-charges-{CUSTOMER_ID}-" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "charged_at_wib",
        "customer_id",
        "message_id",
        "flow",
        "purpose",
        "price_version",
        "amount_idr",
    ]
    body = rows[1:]
    assert len(body) == len(env.extra.charged_messages)
    assert sum(int(r[6]) for r in body) == env.extra.charge_total_idr
    prices = [r[5] for r in body]
    assert "'" + FORMULA_PRICE in prices and FORMULA_PRICE not in prices
    assert restore("'" + FORMULA_PRICE) == FORMULA_PRICE
    stamps = [r[0] for r in body]
    assert stamps == sorted(stamps)  # oldest first
    (row,) = await env.audit("export.charges")
    assert row.actor == "sari" and row.subject_id == CUSTOMER_ID
