"""The incident, meter-readings and charges pages over HTTP (no browser): what each role
sees and may do, CSRF, the fixed notices forms come back with, and bad input said so
with no rows shown."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_seed import CLEAR_TOKEN, CUSTOMER_ID, METER, PASSWORD, PHONE

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        yield opened


async def _login(env: Env, user: str) -> str:
    answer = await env.client.post("/login", data={"username": user, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    page = (await env.client.get("/incidents")).text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


async def test_pages_need_a_login(env: Env) -> None:
    for url in (
        "/incidents",
        f"/incidents/{env.extra.meter_incident}",
        f"/meters/{METER}/readings",
        f"/customers/{CUSTOMER_ID}/charges",
        "/readings",
        "/charges",
    ):
        answer = await env.client.get(url)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", url


async def test_the_menu_links_every_new_page_in_both_languages(env: Env) -> None:
    await _login(env, "hana")
    page = (await env.client.get("/?lang=en")).text
    for href, label in (
        ("/incidents", "Incidents"),
        ("/readings", "Meter readings"),
        ("/charges", "SMS charges"),
    ):
        assert re.search(rf'<a href="{href}"[^>]*>{label}</a>', page), href
    page = (await env.client.get("/?lang=id")).text
    assert ">Insiden</a>" in page and ">Biaya SMS</a>" in page and ">Pembacaan meter</a>" in page


async def test_queue_page_masks_phones_and_rejects_a_bad_filter(env: Env) -> None:
    await _login(env, "hana")
    page = await env.client.get("/incidents")
    assert page.status_code == 200
    assert f'id="incident-{env.extra.meter_incident}"' in page.text
    assert PHONE not in page.text and "+62812*****890" in page.text
    assert f'id="incident-{env.extra.resolved_incident}"' not in page.text
    bad = await env.client.get("/incidents?state=bogus")
    assert bad.status_code == 422 and "Saringan tidak sah." in bad.text
    assert 'id="incident-' not in bad.text  # no unfiltered rows


async def test_a_form_without_the_csrf_token_is_refused(env: Env) -> None:
    await _login(env, "hana")
    url = f"/incidents/{env.extra.meter_incident}"
    answer = await env.client.post(f"{url}/notes", data={"csrf": "0" * 64, "note": "hello"})
    assert answer.status_code == 403
    assert "hello" not in (await env.client.get(url)).text


async def test_forms_work_an_incident_and_come_back_with_fixed_notices(env: Env) -> None:
    csrf = await _login(env, "hana")
    url = f"/incidents/{env.extra.meter_incident}"
    taken = await env.client.post(f"{url}/assign", data={"csrf": csrf})
    assert taken.status_code == 303 and taken.headers["location"] == f"{url}?done=1"
    short = await env.client.post(f"{url}/resolve", data={"csrf": csrf, "resolution": "ok"})
    assert short.headers["location"] == f"{url}?problem=resolution_required"
    shown = (await env.client.get(short.headers["location"] + "&lang=en")).text
    assert "Write the resolution (3-2000 characters)." in shown
    reopen = await env.client.post(f"{url}/reopen", data={"csrf": csrf, "note": "again"})
    assert reopen.headers["location"] == f"{url}?problem=reopen_supervisor"
    done = await env.client.post(
        f"{url}/resolve", data={"csrf": csrf, "resolution": "token applied after resend"}
    )
    assert done.headers["location"] == f"{url}?done=1"
    page = (await env.client.get(f"{url}?problem=<script>")).text
    assert "token applied after resend" in page and "<script>" not in page
    assert len(await env.audit("action.incident_resolve")) == 1


async def test_unknown_incident_meter_and_customer_are_404_pages(env: Env) -> None:
    await _login(env, "hana")
    for url in (
        "/incidents/999999",
        "/meters/14000000099/readings",
        "/customers/530000000099/charges",
    ):
        answer = await env.client.get(url)
        assert answer.status_code == 404, url
        assert answer.text.startswith("<!doctype html>"), url  # a page, not JSON


async def test_readings_page_answers_what_the_credit_is(env: Env) -> None:
    await _login(env, "hana")
    page = await env.client.get(f"/meters/{METER}/readings?lang=en")
    assert page.status_code == 200
    assert re.search(r'id="credit-now">12\.34</span>', page.text)
    assert page.text.count("<polyline") == 1 and "<script" not in page.text
    assert "Credit is running low" in page.text  # the LOW_CREDIT alarm explained
    assert CLEAR_TOKEN not in page.text and "7391 **** **** **** 4608" in page.text
    bad = await env.client.get(f"/meters/{METER}/readings?rc=zzz")
    assert bad.status_code == 400 and 'id="readings"' not in bad.text
    older = re.search(r'id="readings-older" href="|href="([^"]+)" id="readings-older"', page.text)
    assert older is not None and older.group(1)
    second = await env.client.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "12.34</td>" not in second.text


async def test_lookups_go_to_the_page_or_say_what_is_wrong(env: Env) -> None:
    await _login(env, "hana")
    meter = await env.client.get(f"/readings?meter_number={METER}")
    assert meter.status_code == 303 and meter.headers["location"] == f"/meters/{METER}/readings"
    customer = await env.client.get(f"/charges?customer_id={CUSTOMER_ID}")
    assert customer.headers["location"] == f"/customers/{CUSTOMER_ID}/charges"
    bad = await env.client.get("/charges?customer_id=12ab&lang=en")
    assert bad.status_code == 422 and "A customer ID is 12 digits." in bad.text


async def test_charges_page_bad_period_shows_no_rows_and_csv_is_supervisor_only(env: Env) -> None:
    await _login(env, "hana")
    url = f"/customers/{CUSTOMER_ID}/charges"
    bad = await env.client.get(f"{url}?from=2026-02-10&until=2026-02-01")
    assert bad.status_code == 422 and "until is before from" in bad.text
    assert 'id="charge-rows"' not in bad.text
    page = await env.client.get(url)
    assert page.status_code == 200 and 'id="export-csv"' not in page.text
    assert (await env.client.get(f"{url}.csv")).status_code == 403
    await env.client.post("/logout", data={"csrf": await _login(env, "hana")})
    await _login(env, "sari")
    page = await env.client.get(url)
    assert 'id="export-csv"' in page.text
    export = await env.client.get(f"{url}.csv")
    assert export.status_code == 200 and export.text.startswith("charged_at_wib,")
