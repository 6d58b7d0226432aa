"""The cost ledger: every SMS carried successfully is charged to its customer once, at
the price in force (settings.prices); failed attempts and retries never are."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.hub.context import HubContext
from operator_data.store.messages import Message, charge_message


async def charge(ctx: HubContext, conn: AsyncConnection, message: Message) -> bool:
    if message.customer_id is None:
        return False  # nobody to charge (an unregistered sender, an unbound SIM)
    now = ctx.now()
    price = ctx.settings.prices.at(now)
    return await charge_message(
        conn,
        message.id,
        price_version=price.version,
        amount_idr=price.prices_idr[message.flow],
        at=now,
    )
