"""The incident tables on both backends: an item's trail and links go with the item when
the retention purge deletes it (ON DELETE CASCADE), and one link is stored once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from operator_data.api.incident_tables import helpdesk_item_events, helpdesk_item_links
from operator_data.hub.helpdesk import open_incident
from operator_data.store import Store, schema

pytestmark = pytest.mark.timeout(60)

AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


async def _count(store: Store, table: object) -> int:
    async with store.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def test_deleting_an_item_deletes_its_trail_and_links(store: Store) -> None:
    async with store.begin() as conn:
        item = await open_incident(conn, category="store_stalled", subject="stall", at=AT)
        await conn.execute(
            insert(helpdesk_item_events).values(
                item_id=item, at=AT, actor="hana", action="note", state="open", note="x"
            )
        )
        await conn.execute(
            insert(helpdesk_item_links).values(
                item_id=item, kind="meter", ref="14000000001", added_by="hana", added_at=AT
            )
        )
    async with store.begin() as conn:
        await conn.execute(delete(schema.helpdesk_items).where(schema.helpdesk_items.c.id == item))
    assert await _count(store, helpdesk_item_events) == 0
    assert await _count(store, helpdesk_item_links) == 0


async def test_the_same_link_cannot_be_stored_twice(store: Store) -> None:
    async with store.begin() as conn:
        item = await open_incident(conn, category="store_stalled", subject="stall", at=AT)
    row = {"item_id": item, "kind": "meter", "ref": "14000000001", "added_by": "a", "added_at": AT}
    async with store.begin() as conn:
        await conn.execute(insert(helpdesk_item_links).values(**row))
    with pytest.raises(IntegrityError):
        async with store.begin() as conn:
            await conn.execute(insert(helpdesk_item_links).values(**row))


async def test_the_page_queries_answer_alike_on_both_backends(store: Store) -> None:
    """The queue, the readings and the charges, as the API runs them, on SQLite and
    PostgreSQL (JSON values, the purpose's COALESCE in SELECT and GROUP BY, keysets)."""
    from operator_data.api import customer_charges as cc
    from operator_data.api import incident_queue as iq
    from operator_data.api import meter_readings
    from operator_data.api.auth import Principal, Role, User
    from operator_data.store import Flow
    from operator_data.store.messages import record_inbound

    async with store.begin() as conn:
        for n in range(3):
            await open_incident(conn, category="c", subject=f"s{n}", at=AT - timedelta(minutes=n))
            await conn.execute(
                insert(schema.telemetry_readings).values(
                    meter_number="14000000001",
                    received_at=AT - timedelta(minutes=n),
                    credit_kwh=f"{10 + n}.5",
                    total_kwh="100",
                    values={"voltage_v": "220.0", "power_w": 300, "signal_csq": 20},
                )
            )
            message, _ = await record_inbound(
                conn,
                flow=Flow.CUSTOMER_TO_HUB,
                idempotency_key=f"in-{n}",
                peer_msisdn="+6281234567890",
                customer_id="530000000001",
                kind="BELI" if n else None,
                at=AT,
            )
            await conn.execute(
                insert(schema.cost_ledger).values(
                    message_id=message.id,
                    customer_id="530000000001",
                    flow="customer_to_hub",
                    price_version="v1",
                    amount_idr=100,
                    charged_at=AT - timedelta(seconds=n),
                )
            )
    user = User(1, "hana", Role.HELPDESK, True, AT)
    principal = Principal(user, "api_key")
    period = cc.Period(date(2026, 11, 30), date(2026, 12, 1))
    async with store.read() as conn:
        first = await iq.queue(conn, principal, state="", assigned_to=None, limit=2, cursor=None)
        rest = await iq.queue(
            conn, principal, state="", assigned_to=None, limit=2, cursor=first.next_cursor
        )
        page = await meter_readings.readings(conn, "14000000001", limit=2, cursor=None)
        totals = await cc.totals(conn, "530000000001", period)
        rows, _ = await cc.charges(conn, "530000000001", period, limit=10, cursor=None)
        lines = [line async for line in cc.csv_lines(conn, "530000000001", period)]
    assert [r["subject"] for r in first.rows + rest.rows] == ["s0", "s1", "s2"]
    assert [r["credit_kwh"] for r in page.rows] == [10.5, 11.5]
    assert page.rows[0]["voltage_v"] == 220.0 and page.rows[0]["power_w"] == 300
    assert page.next_cursor is not None
    assert totals["groups"] == [
        {
            "flow": "customer_to_hub",
            "purpose": "",
            "price_version": "v1",
            "sms_count": 1,
            "amount_idr": 100,
        },
        {
            "flow": "customer_to_hub",
            "purpose": "BELI",
            "price_version": "v1",
            "sms_count": 2,
            "amount_idr": 200,
        },
    ]
    assert len(rows) == 3 and len(lines) == 4
