"""Items the workflows open for the 24-hour helpdesk (0066 art. 4(2)f)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store import schema

log = logging.getLogger("operator_data.hub.helpdesk")


async def open_incident(
    conn: AsyncConnection,
    *,
    category: str,
    subject: str,
    at: datetime,
    notes: str | None = None,
    customer_id: str | None = None,
    meter_number: str | None = None,
    msisdn: str | None = None,
    transaction_id: str | None = None,
) -> int:
    result = await conn.execute(
        insert(schema.helpdesk_items)
        .values(
            kind="incident",
            category=category,
            customer_id=customer_id,
            meter_number=meter_number,
            msisdn=msisdn,
            transaction_id=transaction_id,
            subject=subject[:200],
            notes=notes,
            state="open",
            opened_at=at,
        )
        .returning(schema.helpdesk_items.c.id)
    )
    item = int(result.scalar_one())
    log.info("helpdesk item %d opened: %s (%s)", item, subject, meter_number or msisdn or "-")
    return item
