"""`POST /p2apst/tokens` over HTTP (ASGI): bearer token, validation, idempotency."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from operator_data.hub.push_api import router
from operator_data.store import Store, schema
from tests.operator_data.hub_support import METER, make_token, running_rig

pytestmark = pytest.mark.timeout(60)
SECRET = "push-secret-1"


async def test_pushed_token_over_http_is_delivered_once(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path, p2apst=False, push_token=SECRET) as rig:
        app = FastAPI()
        app.include_router(router)
        app.state.pintar_hub = rig.hub
        token = make_token("15")
        body = {"pln_reference": "PLN-77", "meter_number": METER, "token": token,
                "amount_idr": 50_000, "kwh": "15"}  # fmt: skip
        auth = {"Authorization": f"Bearer {SECRET}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            assert (await http.post("/p2apst/tokens", json=body)).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert (await http.post("/p2apst/tokens", json=body, headers=wrong)).status_code == 401
            bad = {**body, "meter_number": "123"}
            assert (await http.post("/p2apst/tokens", json=bad, headers=auth)).status_code == 422
            unknown = {**body, "meter_number": "14999999999"}
            refused = await http.post("/p2apst/tokens", json=unknown, headers=auth)
            assert refused.status_code == 422 and "not registered" in refused.text
            first = await http.post("/p2apst/tokens", json=body, headers=auth)
            again = await http.post("/p2apst/tokens", json=body, headers=auth)
        assert first.status_code == 200 and first.json()["created"] is True
        assert again.status_code == 200 and again.json()["created"] is False
        assert first.json()["transaction_id"] == again.json()["transaction_id"]
        await rig.until(rig.inbox_has(1))
        assert rig.meter.applied == [token]
        assert await rig.count(schema.transactions) == 1


async def test_without_a_configured_token_every_push_is_refused(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        app = FastAPI()
        app.include_router(router)
        app.state.pintar_hub = rig.hub
        body = {"pln_reference": "PLN-78", "meter_number": METER, "token": make_token(),
                "amount_idr": 20_000}  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            answer = await http.post(
                "/p2apst/tokens", json=body, headers={"Authorization": "Bearer x"}
            )
        assert answer.status_code == 401
        assert await rig.count(schema.transactions) == 0
