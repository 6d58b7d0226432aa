"""The cost ledger: every SMS carried successfully is charged to its customer once, at
the price in force (settings.prices); failed attempts and retries never are."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.hub.context import HubContext
from operator_data.store.messages import charge_carried, charge_if_carried


async def charge(ctx: HubContext, conn: AsyncConnection, message_id: str) -> bool:
    """Charge the message as it is now in the caller's transaction, if it was carried and
    has a customer (an unregistered sender or an unbound SIM has nobody to charge): one
    statement, the message is not read first."""
    now = ctx.now()
    price = ctx.settings.prices.at(now)
    return await charge_if_carried(
        conn, message_id, price_version=price.version, prices_idr=price.prices_idr, at=now
    )


async def charge_many(ctx: HubContext, conn: AsyncConnection, message_ids: Sequence[str]) -> int:
    """`charge` for many messages in one statement; returns how many were charged."""
    now = ctx.now()
    price = ctx.settings.prices.at(now)
    return await charge_carried(
        conn, message_ids, price_version=price.version, prices_idr=price.prices_idr, at=now
    )
