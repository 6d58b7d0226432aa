"""Complaints over the API: every route needs credentials, helpdesk records and works a
complaint to its resolution, only a supervisor assigns to others, marks a third-party
cause, reopens and reads the report; each change leaves its trail (history and audit
log); bad requests get clear errors and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from operator_data.api.auth import Role
from operator_data.complaints.calendar import WIB
from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_seed import CUSTOMER_ID, METER, PHONE

pytestmark = pytest.mark.timeout(60)

CALL = {
    "category": "token",
    "text": "Token Rp100.000 dibayar kemarin belum masuk ke meter",
    "customer_id": CUSTOMER_ID,
    "meter_number": METER,
    "msisdn": PHONE,
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        yield opened


async def _record(env: Env, role: Role = Role.HELPDESK) -> dict[str, Any]:
    response = await env.client.post("/api/v1/complaints", json=CALL, headers=env.as_(role))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_complaint_route_needs_credentials(env: Env) -> None:
    key = "ADU-0000000000"
    for url in (
        "/api/v1/complaints",
        f"/api/v1/complaints/{key}",
        "/api/v1/complaints/report?month=2026-11",
        "/api/v1/complaints/annual?year=2026",
    ):
        assert (await env.client.get(url)).status_code == 401, url
    assert (await env.client.post("/api/v1/complaints", json=CALL)).status_code == 401
    for action in ("assign", "notes", "links", "third-party", "resolve", "reopen"):
        response = await env.client.post(f"/api/v1/complaints/{key}/{action}", json={})
        assert response.status_code == 401, action


async def test_helpdesk_records_and_resolves_a_complaint(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    created = await _record(env)
    ticket = str(created["ticket"])
    assert ticket.startswith("ADU-") and created["state"] == "open"
    assert created["msisdn"] == "+62812*****890"  # masked for the helpdesk role
    assert created["channel"] == "call" and created["due_on"] > created["received_at"][:10]
    url = f"/api/v1/complaints/{ticket}"
    taken = await env.client.post(f"{url}/assign", json={"assigned_to": "hana"}, headers=h)
    assert taken.status_code == 200 and taken.json()["assigned_to"] == "hana"
    await env.client.post(f"{url}/notes", json={"note": "cek transaksi"}, headers=h)
    linked = await env.client.post(
        f"{url}/links", json={"kind": "transaction", "ref": env.seeded.stuck_txn}, headers=h
    )
    assert linked.json()["links"][0]["ref"] == env.seeded.stuck_txn
    resolved = await env.client.post(
        f"{url}/resolve",
        json={"code": "token_resent", "resolution": "token dikirim ulang"},
        headers=h,
    )
    body = resolved.json()
    assert body["state"] == "resolved" and body["resolution_code"] == "token_resent"
    assert [e["action"] for e in body["history"]] == ["open", "assign", "note", "link", "resolve"]
    again = await env.client.post(
        f"{url}/resolve", json={"code": "solved", "resolution": "again"}, headers=h
    )
    assert again.status_code == 409 and "is resolved" in again.json()["detail"]
    for action in ("open", "assign", "note", "link", "resolve"):
        rows = await env.audit(f"action.complaint_{action}")
        assert len(rows) == 1 and rows[0].actor == "hana", action
        assert rows[0].subject_type == "complaint" and rows[0].subject_id == created["id"]
    # the words of a note stay in the complaint's history, not the audit log
    assert "cek" not in str((await env.audit("action.complaint_note"))[0].detail)
    listed = (await env.client.get("/api/v1/complaints?state=resolved", headers=h)).json()
    assert [c["ticket"] for c in listed["items"]] == [ticket]
    assert (await env.client.get("/api/v1/complaints", headers=h)).json()["items"] == []


async def test_supervisor_only_actions_are_refused_to_helpdesk(env: Env) -> None:
    h, sup = env.as_(Role.HELPDESK), env.as_(Role.SUPERVISOR)
    ticket = str((await _record(env))["ticket"])
    url = f"/api/v1/complaints/{ticket}"
    assert (
        await env.client.post(f"{url}/assign", json={"assigned_to": "sari"}, headers=h)
    ).status_code == 403
    flag = {"third_party": True, "reason": "gangguan jaringan operator seluler"}
    assert (await env.client.post(f"{url}/third-party", json=flag, headers=h)).status_code == 403
    marked = await env.client.post(f"{url}/third-party", json=flag, headers=sup)
    assert marked.status_code == 200 and marked.json()["third_party"] is True
    assert marked.json()["msisdn"] == PHONE  # supervisors see the number in full
    given = await env.client.post(f"{url}/assign", json={"assigned_to": "hana"}, headers=sup)
    assert given.json()["assigned_to"] == "hana"
    await env.client.post(
        f"{url}/resolve", json={"code": "referred", "resolution": "ke operator"}, headers=h
    )
    body = {"note": "pelanggan menelepon lagi"}
    assert (await env.client.post(f"{url}/reopen", json=body, headers=h)).status_code == 403
    reopened = await env.client.post(f"{url}/reopen", json=body, headers=sup)
    assert reopened.json()["state"] == "open" and reopened.json()["resolution_code"] is None
    for url in ("/api/v1/complaints/report?month=2026-11", "/api/v1/complaints/annual?year=2026"):
        assert (await env.client.get(url, headers=h)).status_code == 403, url
        assert (await env.client.get(url, headers=sup)).status_code == 200, url
    assert len(await env.audit("action.complaint_third_party")) == 1


async def test_report_route_gives_the_figures_and_refuses_bad_months(env: Env) -> None:
    sup = env.as_(Role.SUPERVISOR)
    await _record(env)
    today = env.seeded.now.astimezone(WIB).strftime("%Y-%m")
    found = (await env.client.get(f"/api/v1/complaints/report?month={today}", headers=sup)).json()
    assert found["month"] == today and found["received"] >= 1
    assert found["disruption"]["customers"] >= 1
    bad = await env.client.get("/api/v1/complaints/report?month=2026-13", headers=sup)
    assert bad.status_code == 422 and "YYYY-MM" in bad.json()["detail"]
    assert len(await env.audit("view.complaint_report")) == 1


async def test_bad_input_gets_clear_errors_and_changes_nothing(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    for body in (
        {**CALL, "category": "lain"},
        {**CALL, "text": ""},
        {**CALL, "meter_number": "123"},
        {"category": "token", "text": "no one named"},
    ):
        response = await env.client.post("/api/v1/complaints", json=body, headers=h)
        assert response.status_code == 422, body
    nobody = await env.client.post(
        "/api/v1/complaints", json={"category": "token", "text": "x"}, headers=h
    )
    assert "customer ID, the meter number or the phone number" in nobody.json()["detail"]
    ticket = str((await _record(env))["ticket"])
    url = f"/api/v1/complaints/{ticket}"
    for action, body in (
        ("resolve", {"code": "fixed", "resolution": "fixed it"}),
        ("resolve", {"code": "solved", "resolution": "ok"}),
        ("links", {"kind": "transaction", "ref": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}),
        ("links", {"kind": "meter", "ref": METER}),
        ("notes", {"note": ""}),
    ):
        response = await env.client.post(f"{url}/{action}", json=body, headers=h)
        assert response.status_code == 422, (action, body)
    assert (await env.client.get("/api/v1/complaints/ADU-ZZZZZZZZZZ", headers=h)).status_code == 404
    assert (await env.client.get("/api/v1/complaints?state=closed", headers=h)).status_code == 422
    item = (await env.client.get(url, headers=h)).json()
    assert item["state"] == "open" and [e["action"] for e in item["history"]] == ["open"]
