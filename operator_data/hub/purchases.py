"""Purchases through P2APST: inquiry, then the 2200 under the transaction's id as the
switcher reference (so the client's journal guarantees at most one 2200 per purchase),
then the token delivery. Driven again by the sweep after any interruption."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from operator_data.hub.coalesce import Coalescer
from operator_data.hub.context import HubContext
from operator_data.hub.declines import Decline, apply_declines
from operator_data.hub.journal import PurchaseClaims
from operator_data.hub.lifecycle import OPEN
from operator_data.hub.token_issue import Paid, issue_tokens
from operator_data.store import schema
from operator_data.store.transactions import Transaction, get_transaction
from operator_data.store.workflow_schema import hub_purchases
from p2apst_adapter.client import P2apstUnavailable
from p2apst_adapter.model import PurchaseRequest, PurchaseResult

log = logging.getLogger("operator_data.hub.purchases")


class PurchaseDriver:
    """Runs each open purchase to its end, once per process at a time, and with `claims`
    once per cluster at a time (a worker that cannot claim a purchase leaves it to the
    worker driving it; the sweep looks again later)."""

    def __init__(self, ctx: HubContext, claims: PurchaseClaims | None = None) -> None:
        self._ctx = ctx
        self._running: set[str] = set()
        limit = ctx.settings.hub.batch_size
        # Paid and refused answers of many purchases are written together (one unit per
        # batch, one statement per table): whatever comes in while one batch is written
        # goes into the next.
        self._issuer: Coalescer[Paid, None] = Coalescer(
            self._issue, limit=limit, name="purchase-paid"
        )
        self._decliner: Coalescer[Decline, bool] = Coalescer(
            lambda batch: apply_declines(ctx, batch), limit=limit, name="purchase-declined"
        )
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
                        txs.c.state.in_(sorted(s.value for s in OPEN)),
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
        if tx.state not in OPEN:
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
        await self._issuer.submit(Paid(tx, result))

    async def _issue(self, paid: Sequence[Paid]) -> list[None]:
        await issue_tokens(self._ctx, paid)  # a purchase moved on meanwhile is left alone
        return [None] * len(paid)

    async def _declined(self, tx: Transaction, code: str) -> None:
        await self._decliner.submit(Decline(tx, code))
