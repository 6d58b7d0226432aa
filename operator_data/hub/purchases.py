"""Purchases through P2APST: inquiry, then the 2200 under the transaction's id as the
switcher reference (so the client's journal guarantees at most one 2200 per purchase),
then the token delivery. Driven again by the sweep after any interruption."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.commands.replies import Reply, render
from operator_data.hub.context import HubContext
from operator_data.hub.formatting import rupiah, short_ref
from operator_data.hub.journal import PurchaseClaims
from operator_data.hub.outbound import PRIORITY_RECEIPT, queue_text
from operator_data.hub.token_issue import OPEN_STATES, TokenIssuer
from operator_data.store import TransactionState, schema
from operator_data.store.transactions import Transaction, get_transaction
from operator_data.store.transitions import TRANSACTIONS, advance
from operator_data.store.workflow_schema import hub_purchases
from p2apst_adapter.client import P2apstUnavailable
from p2apst_adapter.dialect import ResponseCode
from p2apst_adapter.model import PurchaseRequest, PurchaseResult

log = logging.getLogger("operator_data.hub.purchases")
T = TransactionState

# Short reasons for PURCHASE_FAILED (they must fit the one-SMS template).
_DECLINE_REASON: dict[str, str] = {
    ResponseCode.UNKNOWN_METER: "meter tidak dikenal",
    ResponseCode.UNKNOWN_CUSTOMER: "pelanggan tidak dikenal",
    ResponseCode.CUSTOMER_BLOCKED: "pelanggan diblokir",
    ResponseCode.CUSTOMER_SUSPENDED: "pelanggan diblokir",
    ResponseCode.BELOW_MINIMUM: "nominal terlalu kecil",
    ResponseCode.ABOVE_MAXIMUM: "nominal terlalu besar",
    ResponseCode.KWH_OVER_MAXIMUM: "total kWh melebihi batas",
    ResponseCode.NO_PAYMENT: "tidak ada pembayaran",
}


def _reason(code: str) -> str:
    return _DECLINE_REASON.get(code, f"ditolak PLN (kode {code})")


class PurchaseDriver:
    """Runs each open purchase to its end, once per process at a time, and with `claims`
    once per cluster at a time (a worker that cannot claim a purchase leaves it to the
    worker driving it; the sweep looks again later)."""

    def __init__(self, ctx: HubContext, claims: PurchaseClaims | None = None) -> None:
        self._ctx = ctx
        self._running: set[str] = set()
        self._issuer = TokenIssuer(ctx)
        self.claims = claims

    def start(self, purchase: str | Transaction) -> None:
        """Drive a purchase: by id (read first), or a transaction just recorded in hand
        (new: nothing journalled yet, so nothing to read)."""
        transaction_id = purchase if isinstance(purchase, str) else purchase.id
        if self._ctx.p2apst is None or transaction_id in self._running:
            return
        self._running.add(transaction_id)
        fresh = None if isinstance(purchase, str) else purchase
        self._ctx.spawn(self._run(transaction_id, fresh), name=f"purchase-{transaction_id}")

    async def _run(self, transaction_id: str, fresh: Transaction | None) -> None:
        try:
            await self.drive(transaction_id, fresh)
        finally:
            self._running.discard(transaction_id)

    async def sweep(self) -> int:
        """Restart every open purchase not running here and untouched for
        `hub.purchase_restart_after_s` (after a crash or an outage; another worker may be
        driving a younger one)."""
        txs = schema.transactions
        grace = timedelta(seconds=self._ctx.settings.hub.purchase_restart_after_s)
        stale_before = self._ctx.now() - grace
        async with self._ctx.store.read() as conn:
            ids = [
                str(i)
                for i in await conn.scalars(
                    select(txs.c.id)
                    .where(
                        txs.c.state.in_([s.value for s in OPEN_STATES]),
                        txs.c.idempotency_key.like("sms:%"),
                        txs.c.state_at <= stale_before,
                    )
                    .order_by(txs.c.created_at)
                    .limit(500)
                )
            ]
        for transaction_id in ids:
            self.start(transaction_id)
        return len(ids)

    async def drive(self, transaction_id: str, fresh: Transaction | None = None) -> None:
        claims = self.claims
        if claims is None:
            await self._drive(transaction_id, fresh)
            return
        if not await claims.claim(transaction_id):
            log.debug("purchase %s is driven by another worker", transaction_id)
            return
        try:
            await self._drive(transaction_id, fresh)
        finally:
            await claims.release(transaction_id)

    async def _drive(self, transaction_id: str, fresh: Transaction | None) -> None:
        ctx = self._ctx
        client = ctx.p2apst
        if client is None:
            return
        if fresh is not None:
            tx, journaled = fresh, None  # recorded just now, in the answer's unit of work
        else:
            async with ctx.store.read() as conn:
                tx = await get_transaction(conn, transaction_id)
                journaled = await conn.scalar(
                    select(hub_purchases.c.request).where(hub_purchases.c.key == transaction_id)
                )
        if tx.state not in OPEN_STATES:
            return
        if journaled is not None:
            request = PurchaseRequest.from_json(json.loads(str(journaled)))
        else:
            try:
                inquiry = await client.inquiry(meter_number=tx.meter_number)
            except P2apstUnavailable as error:
                log.info("purchase %s waits for P2APST: %s", tx.id, error)
                return  # the sweep tries again
            if not inquiry.found:
                await self._declined(tx, inquiry.response_code)
                return
            request = PurchaseRequest.from_inquiry(
                inquiry, Decimal(tx.amount_idr), switcher_reference=tx.id
            )
        # REQUESTED -> SUBMITTED happens as the client journals the request, before the
        # 2200 goes out (HubPurchaseJournal.begin: one unit of work for both).
        result = await client.purchase(request)
        if result.paid:
            await self._paid(tx, result)
        else:
            await self._declined(tx, result.response_code)

    async def _paid(self, tx: Transaction, result: PurchaseResult) -> None:
        # Issued with the other purchases paid meanwhile, in one unit (token_issue.py).
        await self._issuer.issue(tx, result)

    async def _declined(self, tx: Transaction, code: str) -> None:
        ctx = self._ctx
        async with ctx.unit() as (conn, _):
            if not await advance(
                conn,
                TRANSACTIONS,
                tx.id,
                T.DECLINED,
                at=ctx.now(),
                only_from=OPEN_STATES,
                extra_values={"response_code": code[:4]},
            ):
                return
            await _tell_declined(ctx, conn, tx.id, tx.phone_msisdn, tx.amount_idr, code)


async def _tell_declined(
    ctx: HubContext,
    conn: AsyncConnection,
    transaction_id: str,
    phone: str | None,
    amount_idr: int,
    code: str,
) -> None:
    if phone is None:
        return
    await queue_text(
        ctx,
        conn,
        idempotency_key=f"declined:{transaction_id}",
        to=phone,
        text=render(
            Reply.PURCHASE_FAILED, ctx.lang, amount=rupiah(amount_idr), reason=_reason(code)
        ),
        kind="purchase-failed",
        transaction_id=transaction_id,
        priority=PRIORITY_RECEIPT,
        correlation_id=short_ref(transaction_id),
    )
