"""Read models of one message (masked text, raw PDU where it may be shown, retries, the
gateway and modem, its state history, the outbox row still waiting) and of the purchase
search by PLN reference, switcher reference or token suffix.

Every query reads through an index of store/schema.py: a message by its primary key, its
states by (message_id, at), purchases by ix_transactions_pln_ref / ix_transactions_switcher_ref,
and a token suffix only inside one meter's or one customer's purchases (their
(meter_number | customer_id, created_at) indexes): `token_masked` keeps only the first and
last four digits, and a suffix alone would read every purchase ever made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from operator_data.store import schema
from operator_data.store.states import Direction, Flow

msg = schema.messages
mst = schema.message_states
out = schema.outbox
txn = schema.transactions

#: Flows whose raw bytes are the customer's own words: a command carries the PIN and a
#: notice may carry a token, so their PDU is never shown (the body is masked at write time).
CUSTOMER_FLOWS = frozenset({Flow.CUSTOMER_TO_HUB.value, Flow.HUB_TO_CUSTOMER.value})
SEARCH_LIMIT = 50


class BadSearch(ValueError):
    """A purchase search that cannot be answered from an index (or is malformed)."""


async def message_detail(conn: AsyncConnection, message_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(
                msg.c.id,
                msg.c.created_at,
                msg.c.direction,
                msg.c.flow,
                msg.c.peer_msisdn,
                msg.c.meter_number,
                msg.c.customer_id,
                msg.c.gateway_id,
                msg.c.modem_id,
                msg.c.kind,
                msg.c.body,
                msg.c.raw_pdu,
                msg.c.state,
                msg.c.state_at,
                msg.c.retries,
                msg.c.reject_reason,
                msg.c.correlation_id,
                msg.c.in_reply_to,
                msg.c.transaction_id,
            ).where(msg.c.id == message_id)
        )
    ).first()
    if row is None:
        return None
    detail = dict(row._mapping)
    raw: bytes | None = detail.pop("raw_pdu")
    masked = detail["flow"] in CUSTOMER_FLOWS
    detail["pdu_masked"] = masked and raw is not None
    detail["raw_pdu_hex"] = None if masked or raw is None else raw.hex()
    detail["states"] = [
        dict(r._mapping)
        for r in await conn.execute(
            select(mst.c.state, mst.c.at, mst.c.detail)
            .where(mst.c.message_id == message_id)
            .order_by(mst.c.at, mst.c.id)
        )
    ]
    waiting = (
        await conn.execute(
            select(
                out.c.id,
                out.c.gateway_hint,
                out.c.priority,
                out.c.available_at,
                out.c.claimed_by,
                out.c.lease_until,
                out.c.attempts,
                out.c.created_at,
            ).where(out.c.message_id == message_id)
        )
    ).first()
    detail["outbox"] = None if waiting is None else dict(waiting._mapping)
    if detail["transaction_id"] is None and detail["direction"] == Direction.IN.value:
        # A customer's BELI is linked the other way (transactions.request_message_id).
        detail["transaction_id"] = await conn.scalar(
            select(txn.c.id).where(
                txn.c.phone_msisdn == detail["peer_msisdn"],
                txn.c.request_message_id == message_id,
            )
        )
    return detail


@dataclass(frozen=True, slots=True)
class TransactionSearch:
    pln_ref: str | None = None
    switcher_ref: str | None = None
    token_suffix: str | None = None
    meter_number: str | None = None
    customer_id: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE of the search; raises BadSearch for what no index can answer."""
        given = [v for v in (self.pln_ref, self.switcher_ref, self.token_suffix) if v]
        if len(given) != 1:
            raise BadSearch("give exactly one of pln_ref, switcher_ref, token_suffix")
        for name, value in (("pln_ref", self.pln_ref), ("switcher_ref", self.switcher_ref)):
            if value is not None and not re.fullmatch(r"[0-9A-Za-z._/-]{1,64}", value):
                raise BadSearch(f"{name}: 1-64 letters, digits or . _ / -")
        if self.meter_number is not None and not re.fullmatch(r"[0-9]{11}", self.meter_number):
            raise BadSearch("meter_number: 11 digits")
        if self.customer_id is not None and not re.fullmatch(r"[0-9]{12}", self.customer_id):
            raise BadSearch("customer_id: 12 digits")
        if self.pln_ref:
            return [txn.c.pln_ref == self.pln_ref]
        if self.switcher_ref:
            return [txn.c.switcher_ref == self.switcher_ref]
        assert self.token_suffix is not None
        if not re.fullmatch(r"[0-9]{4}", self.token_suffix):
            raise BadSearch("token_suffix: the last 4 digits of the token")
        if self.meter_number is None and self.customer_id is None:
            raise BadSearch("token_suffix: give the meter_number or customer_id too")
        where: list[ColumnElement[bool]] = [
            txn.c.token_masked.endswith(" " + self.token_suffix, autoescape=True)
        ]
        if self.meter_number is not None:
            where.append(txn.c.meter_number == self.meter_number)
        else:
            where.append(txn.c.customer_id == self.customer_id)
        return where


def transaction_search_query(search: TransactionSearch) -> Any:
    return (
        select(
            txn.c.id,
            txn.c.created_at,
            txn.c.meter_number,
            txn.c.customer_id,
            txn.c.phone_msisdn,
            txn.c.amount_idr,
            txn.c.token_masked,
            txn.c.pln_ref,
            txn.c.switcher_ref,
            txn.c.state,
            txn.c.state_at,
        )
        .where(*search.conditions())
        .order_by(txn.c.created_at.desc(), txn.c.id.desc())
        .limit(SEARCH_LIMIT)
    )


async def search_transactions(
    conn: AsyncConnection, search: TransactionSearch
) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in await conn.execute(transaction_search_query(search))]
