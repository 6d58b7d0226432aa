"""The cost ledger: every SMS carried successfully is charged to its customer once, at
the price in force (settings.prices); failed attempts and retries never are."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.hub.context import HubContext
from operator_data.store.messages import charge_message, get_message


async def charge(ctx: HubContext, conn: AsyncConnection, message_id: str) -> bool:
    """Charge the message as it is now in the caller's transaction (read once, here)."""
    message = await get_message(conn, message_id)
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
        message=message,
    )
