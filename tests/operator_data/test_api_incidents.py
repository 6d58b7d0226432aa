"""The incident queue over the API: what it lists, who may do what, the trail each change
leaves (item history and audit log), and the errors bad requests get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from operator_data.api.auth import Role
from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_seed import METER, PHONE

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        yield opened


async def test_every_incident_route_needs_credentials(env: Env) -> None:
    item = env.extra.meter_incident
    for url in ("/api/v1/incidents", f"/api/v1/incidents/{item}"):
        assert (await env.client.get(url)).status_code == 401, url
    for action, body in (
        ("assign", {"assigned_to": "hana"}),
        ("notes", {"note": "x"}),
        ("resolve", {"resolution": "fixed"}),
        ("links", {"kind": "meter", "ref": METER}),
    ):
        response = await env.client.post(f"/api/v1/incidents/{item}/{action}", json=body)
        assert response.status_code == 401, action


async def test_working_queue_lists_open_incidents_newest_first_and_masks_phones(env: Env) -> None:
    body = (await env.client.get("/api/v1/incidents", headers=env.as_(Role.HELPDESK))).json()
    ids = [i["id"] for i in body["items"]]
    # the resolved one (stored as the legacy "closed") and the complaint are not in it
    assert ids == [env.extra.meter_incident, env.extra.link_incident]
    first = body["items"][0]
    assert first["state"] == "open" and first["transaction_id"] == env.seeded.stuck_txn
    assert first["msisdn"] == "+62812*****890"
    supervisor = (
        await env.client.get("/api/v1/incidents", headers=env.as_(Role.SUPERVISOR))
    ).json()
    assert supervisor["items"][0]["msisdn"] == PHONE

    done = (
        await env.client.get("/api/v1/incidents?state=resolved", headers=env.as_(Role.HELPDESK))
    ).json()
    assert [i["id"] for i in done["items"]] == [env.extra.resolved_incident]
    assert done["items"][0]["state"] == "resolved"


async def test_queue_pages_with_a_cursor_and_rejects_bad_filters(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    first = (await env.client.get("/api/v1/incidents?state=all&limit=2", headers=h)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (
        await env.client.get(
            f"/api/v1/incidents?state=all&limit=2&cursor={first['next_cursor']}", headers=h
        )
    ).json()
    assert [i["id"] for i in rest["items"]] == [env.extra.resolved_incident]
    assert rest["next_cursor"] is None
    bad = await env.client.get("/api/v1/incidents?state=closed", headers=h)
    assert bad.status_code == 422 and "state must be one of" in bad.json()["detail"]
    assert (await env.client.get("/api/v1/incidents?cursor=nonsense", headers=h)).status_code == 400


async def test_detail_shows_the_hub_links_and_unknown_items_are_404(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    item = (await env.client.get(f"/api/v1/incidents/{env.extra.meter_incident}", headers=h)).json()
    kinds = {(link["kind"], link["ref"]) for link in item["links"]}
    assert ("transaction", env.seeded.stuck_txn) in kinds and ("meter", METER) in kinds
    assert ("phone", "+62812*****890") in kinds
    assert item["hub_notes"] == "token SMS sent, no TOKEN_RESULT" and item["history"] == []
    assert (await env.client.get("/api/v1/incidents/999999", headers=h)).status_code == 404
    assert len(await env.audit("view.incident")) == 1


async def test_helpdesk_works_an_incident_from_open_to_resolved(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    url = f"/api/v1/incidents/{env.extra.meter_incident}"
    taken = await env.client.post(f"{url}/assign", json={"assigned_to": "hana"}, headers=h)
    assert taken.status_code == 200 and taken.json()["state"] == "assigned"
    assert taken.json()["assigned_to"] == "hana"
    noted = await env.client.post(
        f"{url}/notes", json={"note": "called the customer, meter display is blank"}, headers=h
    )
    assert noted.json()["history"][-1]["note"] == "called the customer, meter display is blank"
    linked = await env.client.post(
        f"{url}/links", json={"kind": "alarm", "ref": str(env.seeded.alarm_ids[0])}, headers=h
    )
    assert ("alarm", str(env.seeded.alarm_ids[0])) in {
        (link["kind"], link["ref"]) for link in linked.json()["links"]
    }
    resolved = await env.client.post(
        f"{url}/resolve", json={"resolution": "token resent, meter applied it"}, headers=h
    )
    body = resolved.json()
    assert body["state"] == "resolved" and body["resolved_at"] is not None
    assert [e["action"] for e in body["history"]] == ["assign", "note", "link", "resolve"]
    assert all(e["actor"] == "hana" for e in body["history"])
    # resolving twice is a conflict, and so is assigning a resolved item
    again = await env.client.post(f"{url}/resolve", json={"resolution": "again"}, headers=h)
    assert again.status_code == 409 and "is resolved" in again.json()["detail"]
    late = await env.client.post(f"{url}/assign", json={"assigned_to": "hana"}, headers=h)
    assert late.status_code == 409
    for action in ("assign", "note", "link", "resolve"):
        rows = await env.audit(f"action.incident_{action}")
        assert len(rows) == 1, action
        assert rows[0].actor == "hana" and rows[0].subject_type == "incident"
        assert rows[0].subject_id == str(env.extra.meter_incident)
    # the note's words stay in the item's history, not in the audit log
    assert "blank" not in str((await env.audit("action.incident_note"))[0].detail)


async def test_only_a_supervisor_assigns_to_others_and_reopens(env: Env) -> None:
    h, sup = env.as_(Role.HELPDESK), env.as_(Role.SUPERVISOR)
    url = f"/api/v1/incidents/{env.extra.link_incident}"
    refused = await env.client.post(f"{url}/assign", json={"assigned_to": "sari"}, headers=h)
    assert refused.status_code == 403
    given = await env.client.post(f"{url}/assign", json={"assigned_to": "hana"}, headers=sup)
    assert given.status_code == 200 and given.json()["assigned_to"] == "hana"
    nobody = await env.client.post(f"{url}/assign", json={"assigned_to": "ghost"}, headers=sup)
    assert nobody.status_code == 422 and "no active user" in nobody.json()["detail"]
    await env.client.post(f"{url}/resolve", json={"resolution": "link back up"}, headers=h)
    body = {"note": "the link dropped again"}
    assert (await env.client.post(f"{url}/reopen", json=body, headers=h)).status_code == 403
    reopened = await env.client.post(f"{url}/reopen", json=body, headers=sup)
    assert reopened.status_code == 200
    assert reopened.json()["state"] == "open" and reopened.json()["assigned_to"] is None
    assert len(await env.audit("action.incident_reopen")) == 1


async def test_bad_changes_get_clear_errors_and_change_nothing(env: Env) -> None:
    h = env.as_(Role.HELPDESK)
    url = f"/api/v1/incidents/{env.extra.meter_incident}"
    for action, body in (
        ("notes", {"note": ""}),
        ("notes", {"note": "x" * 2001}),
        ("resolve", {"resolution": "ok"}),
        ("links", {"kind": "customer", "ref": "530000000001"}),
        ("links", {"kind": "meter", "ref": "123"}),
    ):
        response = await env.client.post(f"{url}/{action}", json=body, headers=h)
        assert response.status_code == 422, (action, body)
    missing = await env.client.post(
        f"{url}/links", json={"kind": "transaction", "ref": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, headers=h
    )
    assert missing.status_code == 422 and "does not exist" in missing.json()["detail"]
    gone = await env.client.post(
        "/api/v1/incidents/999999/notes", json={"note": "hello"}, headers=h
    )
    assert gone.status_code == 404
    item = (await env.client.get(url, headers=h)).json()
    assert item["state"] == "open" and item["history"] == []
    assert [link["added_by"] for link in item["links"]] == [None, None, None, None]
