"""More helpdesk data on top of `helpdesk_seed.seed`: incidents the hub opened, a
meter's readings, and SMS charges in the cost ledger (the hub writes these, so plain
inserts and the hub's own `open_incident`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import insert, select

from operator_data.hub.helpdesk import open_incident
from operator_data.store import Store, schema
from tests.operator_data.helpdesk_seed import CUSTOMER_ID, METER, PHONE, Seeded

READINGS = 60  # half-hourly: 30 hours of them
LATEST_CREDIT = "12.34"
#: A price version that a spreadsheet would run as a formula: the CSV must defuse it.
FORMULA_PRICE = "=HYPERLINK(1)"


@dataclass(frozen=True)
class Extra:
    meter_incident: int
    link_incident: int
    resolved_incident: int
    charged_messages: list[str]
    charge_total_idr: int


def credit_at(i: int) -> Decimal:
    """Credit of reading i (0 = newest): falls by 0.5 kWh every half hour."""
    return Decimal(LATEST_CREDIT) + Decimal("0.5") * i


async def seed_extra(store: Store, seeded: Seeded) -> Extra:
    now = seeded.now
    async with store.begin() as conn:
        meter_item = await open_incident(
            conn,
            category="purchase_stuck",
            subject=f"Meter {METER}: token not acknowledged",
            at=now - timedelta(minutes=15),
            notes="token SMS sent, no TOKEN_RESULT",
            customer_id=CUSTOMER_ID,
            meter_number=METER,
            msisdn=PHONE,
            transaction_id=seeded.stuck_txn,
        )
        link_item = await open_incident(
            conn,
            category="p2apst_link_down",
            subject="P2APST link down",
            at=now - timedelta(minutes=40),
        )
        resolved_item = await open_incident(
            conn,
            category="pin-lockout",
            subject="PIN locked",
            at=now - timedelta(hours=3),
            msisdn=PHONE,
        )
        await conn.execute(
            schema.helpdesk_items.update()
            .where(schema.helpdesk_items.c.id == resolved_item)
            .values(state="closed", resolved_at=now - timedelta(hours=2))
        )
        # A complaint is not an incident: the queue must not show it.
        await conn.execute(
            insert(schema.helpdesk_items).values(
                kind="complaint", subject="keluhan", state="open", opened_at=now
            )
        )
        for i in range(READINGS):
            at = now - timedelta(minutes=30 * i + 5)
            await conn.execute(
                insert(schema.telemetry_readings).values(
                    meter_number=METER,
                    meter_time=at - timedelta(seconds=20),
                    received_at=at,
                    credit_kwh=str(credit_at(i)),
                    total_kwh=str(Decimal("1500.0") - Decimal("0.5") * i),
                    values={
                        "voltage_v": "221.5",
                        "power_w": 450 + i,
                        "status": 0,
                        "signal_csq": 7 if i == 0 else 18,
                    },
                )
            )
        ids = [
            str(m)
            for m in await conn.scalars(
                select(schema.messages.c.id)
                .where(schema.messages.c.customer_id == CUSTOMER_ID)
                .order_by(schema.messages.c.id)
            )
        ]
        total = 0
        for n, message_id in enumerate(ids):
            amount = 350 if n % 2 else 200
            total += amount
            await conn.execute(
                insert(schema.cost_ledger).values(
                    message_id=message_id,
                    customer_id=CUSTOMER_ID,
                    flow="meter_to_hub" if n else "customer_to_hub",
                    price_version=FORMULA_PRICE if n == 0 else "2026-11",
                    amount_idr=amount,
                    charged_at=now - timedelta(minutes=n + 1),
                )
            )
    return Extra(meter_item, link_item, resolved_item, ids, total)
