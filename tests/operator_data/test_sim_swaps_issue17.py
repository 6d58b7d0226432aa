"""Issue 17 item 13: SIM swaps requested and rejected (not only approved) on the page and
the API, with the roles and the four-eyes rule tested like the others.

The seed has swap #1: meter 14000000001 from its SIM to the spare SIM, requested by the
supervisor sari and still pending."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from operator_data.api.auth import Role
from operator_data.store import schema
from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_seed import METER, METER_SIM, PASSWORD, SPARE_SIM

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        yield opened


async def _bound_sim(env: Env) -> str | None:
    async with env.store.read() as conn:
        found = await conn.scalar(
            select(schema.sims.c.msisdn).where(schema.sims.c.meter_number == METER)
        )
    return None if found is None else str(found)


async def _login(env: Env, user: str) -> str:
    answer = await env.client.post("/login", data={"username": user, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', (await env.client.get("/sim-swaps")).text)
    assert found is not None
    return found.group(1)


# -- API --------------------------------------------------------------------------------


async def test_the_list_masks_numbers_for_the_helpdesk(env: Env) -> None:
    swap = env.seeded.swap_id
    helpdesk = await env.client.get("/api/v1/sim-swaps", headers=env.as_(Role.HELPDESK))
    assert helpdesk.status_code == 200, helpdesk.text
    (item,) = [i for i in helpdesk.json()["items"] if i["swap_id"] == swap]
    assert item["state"] == "requested" and item["requested_by"] == "sari"
    assert item["new_msisdn"] != SPARE_SIM and item["new_msisdn"].endswith(SPARE_SIM[-3:])
    sup = await env.client.get(f"/api/v1/sim-swaps/{swap}", headers=env.as_(Role.SUPERVISOR))
    assert (sup.json()["old_msisdn"], sup.json()["new_msisdn"]) == (METER_SIM, SPARE_SIM)
    assert (await env.client.get("/api/v1/sim-swaps")).status_code == 401
    missing = await env.client.get("/api/v1/sim-swaps/999", headers=env.as_(Role.HELPDESK))
    assert missing.status_code == 404


async def test_a_bad_filter_is_refused_not_ignored(env: Env) -> None:
    for query in ("state=pending", "meter=123", "limit=0"):
        answer = await env.client.get(f"/api/v1/sim-swaps?{query}", headers=env.as_(Role.HELPDESK))
        assert answer.status_code == 422, query
        assert "items" not in answer.json()
    bad = await env.client.get("/api/v1/sim-swaps?state=pending", headers=env.as_(Role.HELPDESK))
    assert "requested, approved, rejected" in bad.json()["detail"]


async def test_reject_needs_a_supervisor_and_decides_once(env: Env) -> None:
    swap = env.seeded.swap_id
    url = f"/api/v1/sim-swaps/{swap}/reject"
    refused = await env.client.post(url, headers=env.as_(Role.HELPDESK), json={"note": "x"})
    assert refused.status_code == 403
    done = await env.client.post(url, headers=env.as_(Role.ADMIN), json={"note": "salah nomor"})
    assert done.status_code == 200, done.text
    shown = await env.client.get(f"/api/v1/sim-swaps/{swap}", headers=env.as_(Role.ADMIN))
    assert (shown.json()["state"], shown.json()["decided_by"]) == ("rejected", "ade")
    assert shown.json()["decision_note"] == "salah nomor"
    assert await _bound_sim(env) == METER_SIM  # the meter keeps its SIM
    again = await env.client.post(url, headers=env.as_(Role.ADMIN))
    assert again.status_code == 409
    approve = await env.client.post(
        f"/api/v1/sim-swaps/{swap}/approve", headers=env.as_(Role.ADMIN)
    )
    assert approve.status_code == 409
    assert [r.actor for r in await env.audit("action.reject_sim_swap")] == ["ade"]
    assert [r.actor for r in await env.audit("sim_swap.reject")] == ["ade"]


async def test_request_then_four_eyes_approval(env: Env) -> None:
    url = f"/api/v1/meters/{METER}/sim-swaps"
    body = {"new_msisdn": SPARE_SIM, "reason": "SIM hilang"}
    # One pending request per meter: the seed's must be decided first.
    pending = await env.client.post(url, headers=env.as_(Role.HELPDESK), json=body)
    assert pending.status_code == 409 and "pending" in pending.json()["detail"]
    await env.client.post(
        f"/api/v1/sim-swaps/{env.seeded.swap_id}/reject", headers=env.as_(Role.SUPERVISOR)
    )
    made = await env.client.post(url, headers=env.as_(Role.HELPDESK), json=body)
    assert made.status_code == 201, made.text
    swap = made.json()
    assert (swap["state"], swap["requested_by"], swap["reason"]) == (
        "requested",
        "hana",
        "SIM hilang",
    )
    approve = f"/api/v1/sim-swaps/{swap['swap_id']}/approve"
    assert (await env.client.post(approve, headers=env.as_(Role.HELPDESK))).status_code == 403
    done = await env.client.post(approve, headers=env.as_(Role.SUPERVISOR))
    assert done.status_code == 200, done.text
    assert await _bound_sim(env) == SPARE_SIM
    assert [r.actor for r in await env.audit("action.request_sim_swap")] == ["hana"]


@pytest.mark.parametrize(
    ("meter", "number", "code"),
    [
        ("14000000999", SPARE_SIM, 404),  # unknown meter
        (METER, "+628119999999", 404),  # SIM not registered
        (METER, "not-a-number", 422),
        ("1400", SPARE_SIM, 422),
    ],
)
async def test_a_bad_request_says_why(env: Env, meter: str, number: str, code: int) -> None:
    answer = await env.client.post(
        f"/api/v1/meters/{meter}/sim-swaps",
        headers=env.as_(Role.HELPDESK),
        json={"new_msisdn": number},
    )
    assert answer.status_code == code, answer.text
    assert answer.json()["detail"]


# -- page -------------------------------------------------------------------------------


async def test_page_lists_and_rejects_with_a_fixed_notice(env: Env) -> None:
    csrf = await _login(env, "hana")
    page = await env.client.get("/sim-swaps?lang=en")
    assert page.status_code == 200
    assert f'id="swap-{env.seeded.swap_id}"' in page.text and "Requested" in page.text
    assert "/reject" not in page.text  # the helpdesk gets no decision buttons
    assert 'id="nav-sim-swaps"' in page.text  # in the menu of every page
    refused = await env.client.post(f"/sim-swaps/{env.seeded.swap_id}/reject", data={"csrf": csrf})
    assert refused.status_code == 403 and "<nav>" in refused.text  # a page, with the menu
    await env.client.post("/logout", data={"csrf": csrf})

    csrf = await _login(env, "sari")
    no_csrf = await env.client.post(f"/sim-swaps/{env.seeded.swap_id}/reject", data={"csrf": "x"})
    assert no_csrf.status_code == 403
    done = await env.client.post(
        f"/sim-swaps/{env.seeded.swap_id}/reject", data={"csrf": csrf, "note": "ragu"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/sim-swaps?done=rejected"
    shown = await env.client.get("/sim-swaps?done=rejected&lang=id")
    assert "Ganti SIM ditolak." in shown.text and "Ditolak" in shown.text
    again = await env.client.post(f"/sim-swaps/{env.seeded.swap_id}/reject", data={"csrf": csrf})
    assert again.headers["location"] == "/sim-swaps?problem=decided"


async def test_page_request_form_and_its_problems(env: Env) -> None:
    csrf = await _login(env, "hana")
    form = {"csrf": csrf, "meter_number": METER, "new_msisdn": SPARE_SIM, "reason": "rusak"}
    conflict = await env.client.post("/sim-swaps", data=form)
    assert conflict.headers["location"] == "/sim-swaps?problem=conflict"
    bad = await env.client.post("/sim-swaps", data={**form, "meter_number": "12"})
    assert bad.headers["location"] == "/sim-swaps?problem=bad_meter"
    shown = await env.client.get("/sim-swaps?problem=bad_meter&lang=en")
    assert "A meter number is 11 digits." in shown.text
    # A problem code that is not ours shows nothing (no text from the URL reaches the page).
    odd = await env.client.get("/sim-swaps?problem=<b>x</b>")
    assert 'id="problem"' not in odd.text


async def test_page_bad_filter_says_so_and_shows_no_rows(env: Env) -> None:
    await _login(env, "hana")
    page = await env.client.get("/sim-swaps?state=pending&lang=en")
    assert page.status_code == 422
    assert "Unknown state; nothing is shown." in page.text
    assert '<tr id="swap-' not in page.text


async def test_page_approval_is_four_eyes(env: Env) -> None:
    csrf = await _login(env, "sari")  # sari requested the seed's swap
    url = f"/sim-swaps/{env.seeded.swap_id}/approve"
    own = await env.client.post(url, data={"csrf": csrf})
    assert own.headers["location"] == "/sim-swaps?problem=own_request"
    assert await _bound_sim(env) == METER_SIM
    await env.client.post("/logout", data={"csrf": csrf})
    csrf = await _login(env, "ade")
    done = await env.client.post(url, data={"csrf": csrf})
    assert done.headers["location"] == "/sim-swaps?done=approved"
    assert await _bound_sim(env) == SPARE_SIM
    assert [r.actor for r in await env.audit("action.approve_sim_swap")] == ["ade"]
