"""Customers' PINs are not readable by the helpdesk role (issue 16): commands the hub logs
through its own path — mistyped keywords, and the forms the parser accepts with `#`, a
leading `#` or commas — reach `GET /api/v1/messages` with their PIN masked, for every role."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gateway.transport import InboundSms
from operator_data.api.app import create_app
from operator_data.api.auth import Role
from operator_data.crypto import MasterKey
from operator_data.hub.inbound import log_customer_commands
from operator_data.registry import Identified, Registry, SenderCustomer
from operator_data.settings import PinPolicy, Settings
from operator_data.store import Store
from tests.operator_data.helpdesk_seed import CUSTOMER_ID, PHONE, RecordingActions, seed

pytestmark = pytest.mark.timeout(60)

AT = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
# The review's examples: (what the customer typed, its PIN).
TYPED = [
    ("BRLI 100rb 5162", "5162"),
    ("EBLI 50k 9811", "9811"),
    ("BELI 100000 7093#", "7093"),
    ("#BELI 100000 4321", "4321"),
    ("BELI,100000,8642,", "8642"),
]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[Role, str]]]:
    master = MasterKey(secrets.token_bytes(32))
    async with Store(f"sqlite+aiosqlite:///{tmp_path / 'hd.db'}") as store:
        await store.migrate()
        registry = Registry(store, master_key=master, pin_policy=PinPolicy())
        seeded = await seed(store, registry)
        who = Identified(SenderCustomer(CUSTOMER_ID, PHONE))
        events = [
            InboundSms(f"ev-{n}", PHONE, AT, text=text, gateway="gw1", modem="m1")
            for n, (text, _) in enumerate(TYPED)
        ]
        async with store.begin() as conn:  # the hub's own logging of customer SMS
            await log_customer_commands(conn, [(event, who) for event in events], at=AT)
        app = create_app(Settings(), store, registry, actions=RecordingActions(registry))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hd") as client:
            yield client, seeded.keys


@pytest.mark.parametrize("role", [Role.HELPDESK, Role.SUPERVISOR, Role.ADMIN])
async def test_the_message_log_shows_no_customer_pin(
    api: tuple[httpx.AsyncClient, dict[Role, str]], role: Role
) -> None:
    client, keys = api
    answer = await client.get(
        "/api/v1/messages", params={"limit": 200}, headers={"X-API-Key": keys[role]}
    )
    assert answer.status_code == 200, answer.text
    for _, pin in TYPED:  # as a number of its own (a phone number may hold its digits)
        assert not re.search(rf"(?<![0-9]){pin}(?![0-9])", answer.text), (pin, role)
    bodies = {item.get("body") for item in answer.json()["items"]}
    # Masked where the PIN was, the rest still there for the helpdesk to read.
    assert {
        "BRLI 100rb ****",
        "EBLI 50k ****",
        "BELI 100000 ****#",
        "#BELI 100000 ****",
        "BELI,100000,****,",
    } <= bodies
