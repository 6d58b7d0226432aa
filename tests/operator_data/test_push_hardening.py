"""P2APST's token push on the hub's web app: the bearer token before the body, a small
body cap, every field bounded, and a repeated reference with other values refused 409."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from operator_data.api.app import create_app
from operator_data.hub.push_api import router
from operator_data.store import Store, schema
from tests.operator_data.hub_support import METER, Rig, make_token, running_rig

pytestmark = pytest.mark.timeout(60)
SECRET = "push-secret-2"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
async def pushing(store: Store, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Rig]]:
    async with running_rig(store, tmp_path, p2apst=False, push_token=SECRET) as rig:
        app = create_app(rig.settings, rig.store, rig.registry, extra_routers=[router])
        app.state.pintar_hub = rig.hub
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            yield http, rig


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "pln_reference": "PLN-900",
        "meter_number": METER,
        "token": make_token("15"),
        "amount_idr": 50_000,
        "kwh": "15",
        **changes,
    }


async def test_an_anonymous_push_is_401_whatever_its_body(
    pushing: tuple[httpx.AsyncClient, Rig],
) -> None:
    http, rig = pushing
    for content in (b"{not json", b'{"amount_idr": "x"}', b"", b"[" * 3000):
        answer = await http.post(
            "/p2apst/tokens", content=content, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 401, (content[:20], answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"
    assert await rig.count(schema.transactions) == 0


async def test_a_large_push_is_413_unread(pushing: tuple[httpx.AsyncClient, Rig]) -> None:
    http, _ = pushing
    pulled: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        for n in range(60 * 1024):  # 60 MiB if it were all read
            pulled.append(n)
            yield b" " * 1024

    for headers in (AUTH, {}):
        declared = {**headers, "content-length": str(60 * 1024 * 1024)}
        answer = await http.post("/p2apst/tokens", content=stream(), headers=declared)
        assert answer.status_code == 413
    assert pulled == []
    answer = await http.post("/p2apst/tokens", content=stream(), headers=AUTH)
    assert answer.status_code == 413 and len(pulled) <= 8
    padded = {**_body(), "pln_reference": "P" * 64}
    fine = await http.post("/p2apst/tokens", json=padded, headers=AUTH)
    assert fine.status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount_idr": 10**30}, "amount_idr"),
        ({"amount_idr": 0}, "amount_idr"),
        ({"amount_idr": 100_000_001}, "amount_idr"),
        ({"amount_idr": 5.5}, "amount_idr"),
        ({"amount_idr": True}, "amount_idr"),
        ({"kwh": "-1"}, "kwh"),
        ({"kwh": "1e30"}, "kwh"),
        ({"kwh": "NaN"}, "kwh"),
        ({"kwh": "1.23456"}, "kwh"),
        ({"pln_reference": ""}, "pln_reference"),
        ({"pln_reference": "PLN 1"}, "pln_reference"),
        ({"pln_reference": "P" * 65}, "pln_reference"),
        ({"meter_number": "1" * 12}, "meter_number"),
        ({"token": "1" * 21}, "token"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_every_field_is_bounded(
    pushing: tuple[httpx.AsyncClient, Rig], changes: dict[str, Any], field: str
) -> None:
    http, rig = pushing
    answer = await http.post("/p2apst/tokens", json=_body(**changes), headers=AUTH)
    assert answer.status_code == 422, answer.text
    problems = answer.json()["detail"]
    assert [p["loc"] for p in problems] == [["body", field]]
    assert all(p["msg"] for p in problems)
    assert await rig.count(schema.transactions) == 0


async def test_a_repeated_reference_must_be_the_same_push(
    pushing: tuple[httpx.AsyncClient, Rig],
) -> None:
    http, rig = pushing
    first = await http.post("/p2apst/tokens", json=_body(), headers=AUTH)
    assert first.status_code == 200 and first.json()["created"] is True
    same = await http.post("/p2apst/tokens", json=_body(kwh="15.0"), headers=AUTH)
    assert same.status_code == 200 and same.json() == {**first.json(), "created": False}
    other_token = make_token("15", rnd=9)
    for changes, field in (
        ({"token": other_token}, "token"),
        ({"amount_idr": 50_001}, "amount_idr"),
        ({"kwh": "16"}, "kwh"),
        ({"kwh": None}, "kwh"),
    ):
        answer = await http.post("/p2apst/tokens", json=_body(**changes), headers=AUTH)
        assert answer.status_code == 409, (changes, answer.text)
        assert field in answer.json()["detail"]
        assert other_token not in answer.text
    assert await rig.count(schema.transactions) == 1
