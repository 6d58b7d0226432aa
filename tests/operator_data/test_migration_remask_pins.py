"""The 0002_remask_customer_pins migration masks PINs the old masking left in the log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from operator_data.migrations.runner import downgrade, shipped_heads, upgrade
from operator_data.store import Store, schema

pytestmark = pytest.mark.timeout(60)

_AT = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

# (id, direction, flow, body as the old masking stored it, raw PDU, body after the migration)
_ROWS = [
    ("01A", "in", "customer_to_hub", "BRLI 100rb 5162", b"BRLI 100rb 5162", "BRLI 100rb ****"),
    ("01B", "in", "customer_to_hub", "BELI 100000 1234#", None, "BELI 100000 ****#"),
    ("01C", "in", "customer_to_hub", "#BELI 100000 1234", None, "#BELI 100000 ****"),
    ("01D", "in", "customer_to_hub", "BELI,100000,1234,", None, "BELI,100000,****,"),
    ("01E", "in", "customer_to_hub", "BELI 100rb ****", None, "BELI 100rb ****"),
    ("01F", "in", "customer_to_hub", "SALDO 14123456789", None, "SALDO 14123456789"),
    # not customer commands: left alone (a receipt's text, a meter's frame)
    ("01G", "out", "hub_to_customer", "Token 1234 5678", None, "Token 1234 5678"),
    ("01H", "in", "meter_to_hub", None, b"\x01\x02frame", None),
]


async def test_old_rows_are_masked_and_lose_their_raw_pdu(store: Store) -> None:
    async with store.begin() as conn:
        await conn.execute(
            schema.messages.insert(),
            [
                {
                    "id": key,
                    "direction": direction,
                    "flow": flow,
                    "body": body,
                    "raw_pdu": raw,
                    "state": "received",
                    "state_at": _AT,
                    "retries": 0,
                    "idempotency_key": f"sms:{key}",
                    "created_at": _AT,
                }
                for key, direction, flow, body, raw, _ in _ROWS
            ],
        )
    # The rows as a database of before the migration holds them; then upgrade.
    await downgrade(store.engine, "remask_customer_pins@-1")
    assert "0002_remask_customer_pins" not in (await store.current_revision() or "")
    await upgrade(store.engine)
    assert await store.current_revision() == shipped_heads()
    async with store.read() as conn:
        found = {
            row.id: (row.body, row.raw_pdu)
            for row in await conn.execute(
                select(schema.messages.c.id, schema.messages.c.body, schema.messages.c.raw_pdu)
            )
        }
    for key, _, flow, _, raw, masked in _ROWS:
        expected_raw = None if flow == "customer_to_hub" else raw
        assert found[key] == (masked, expected_raw), key
