"""Tokens P2APST pushes to the hub (bought through another channel, e.g. a bank): start
the token delivery workflow. Idempotent by the PLN reference."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.crypto import SealError
from operator_data.hub.context import HubContext
from operator_data.hub.delivery import start_delivery
from operator_data.hub.meter_link import lock_meter
from operator_data.store import TransactionState, schema
from operator_data.store.transactions import (
    Transaction,
    create_transaction,
    mask_token,
    reveal_token,
    set_transaction_state,
    store_token,
)

_TOKEN = re.compile(r"[0-9]{20}")
_REFERENCE = re.compile(r"[\x21-\x7e]{1,64}")


class PushRefused(ValueError):
    """The pushed token cannot be taken (unknown meter, malformed values)."""


class PushConflict(ValueError):
    """The PLN reference was pushed before with another meter, token, amount or kWh: a
    repeat must be the same push, or one of the two is wrong and a person must look."""


@dataclass(frozen=True, slots=True)
class PushedToken:
    pln_reference: str
    meter_number: str
    token: str  # 20 digits
    amount_idr: int
    kwh: Decimal | None = None

    def __repr__(self) -> str:  # the token never reaches a log line through repr()
        return (
            f"PushedToken(pln_reference={self.pln_reference!r}, meter={self.meter_number!r}, "
            f"amount_idr={self.amount_idr}, token='****')"
        )


@dataclass(frozen=True, slots=True)
class PushOutcome:
    transaction_id: str
    created: bool  # False: this PLN reference was pushed before, with the same values


async def push_token(ctx: HubContext, pushed: PushedToken) -> PushOutcome:
    if not _REFERENCE.fullmatch(pushed.pln_reference):
        raise PushRefused("pln_reference must be 1-64 printable characters")
    token = pushed.token.replace("-", "").replace(" ", "")
    if not _TOKEN.fullmatch(token):
        raise PushRefused("token must have 20 digits")
    if pushed.amount_idr <= 0:
        raise PushRefused("amount_idr must be positive")
    now = ctx.now()
    async with ctx.unit() as (conn, unit):
        customer_id = await conn.scalar(
            select(schema.meters.c.customer_id).where(
                schema.meters.c.meter_number == pushed.meter_number
            )
        )
        if customer_id is None:
            raise PushRefused(f"meter {pushed.meter_number} is not registered")
        await lock_meter(conn, pushed.meter_number)
        tx, created = await create_transaction(
            conn,
            idempotency_key=f"push:{pushed.pln_reference}",
            meter_number=pushed.meter_number,
            customer_id=str(customer_id),
            amount_idr=pushed.amount_idr,
            at=now,
        )
        if created:
            await set_transaction_state(
                conn,
                tx.id,
                TransactionState.SUBMITTED,
                at=now,
                detail="pushed by P2APST",
                pln_ref=pushed.pln_reference,
                switcher_ref=pushed.pln_reference[:64],
            )
            await store_token(conn, tx.id, token, ctx.master)
            await set_transaction_state(
                conn,
                tx.id,
                TransactionState.TOKEN_ISSUED,
                at=now,
                kwh=None if pushed.kwh is None else str(pushed.kwh),
            )
            await start_delivery(ctx, conn, unit, tx, token=token, fresh=True)
        else:
            differ = await _differences(ctx, conn, tx, pushed, token)
            if differ:
                raise PushConflict(
                    f"pln_reference {pushed.pln_reference} was pushed before with another "
                    f"{', '.join(differ)} (transaction {tx.id})"
                )
    return PushOutcome(tx.id, created)


async def _differences(
    ctx: HubContext, conn: AsyncConnection, tx: Transaction, pushed: PushedToken, token: str
) -> list[str]:
    """The fields in which a repeated push differs from the first (never their values:
    the token must not reach a log or an answer)."""
    differ = []
    if tx.meter_number != pushed.meter_number:
        differ.append("meter_number")
    try:
        same_token = await reveal_token(conn, tx.id, ctx.master) == token
    except SealError:  # sealed under an older master key: the masked form is what is left
        same_token = tx.token_masked == mask_token(token)
    if not same_token:
        differ.append("token")
    if tx.amount_idr != pushed.amount_idr:
        differ.append("amount_idr")
    before = None if tx.kwh is None else Decimal(tx.kwh)
    if before != pushed.kwh:
        differ.append("kwh")
    return differ
