"""Purchases and token deliveries: recorded before the 2200 goes out, idempotent by key.

The token is sealed at rest (AES-GCM, AAD = transaction id); views use `token_masked`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.crypto.master_key import MasterKey
from operator_data.crypto.sealing import SealError, open_sealed, seal
from operator_data.store import schema
from operator_data.store.bulk import insert_many, insert_returning
from operator_data.store.chunks import chunks
from operator_data.store.once import insert_once
from operator_data.store.states import TransactionState
from operator_data.store.transitions import TRANSACTIONS, NotFound, start, transition
from operator_data.store.types import new_ulid, utcnow

t = schema.transactions


def mask_token(token: str) -> str:
    """'12345678901234567890' -> '1234 **** **** **** 7890' (first and last four digits)."""
    digits = "".join(ch for ch in token if ch.isdigit())
    if len(digits) != 20:
        raise ValueError("an STS token has 20 digits")
    return f"{digits[:4]} **** **** **** {digits[-4:]}"


@dataclass(frozen=True, slots=True)
class Transaction:
    id: str
    idempotency_key: str
    meter_number: str
    customer_id: str
    phone_msisdn: str | None
    amount_idr: int
    kwh: str | None
    token_masked: str | None
    has_token: bool
    pln_ref: str | None
    switcher_ref: str | None
    stan: str | None
    response_code: str | None
    meter_outcome: str | None
    state: TransactionState
    state_at: datetime
    request_message_id: str | None
    created_at: datetime

    @classmethod
    def requested(
        cls,
        transaction_id: str,
        *,
        idempotency_key: str,
        meter_number: str,
        customer_id: str,
        phone_msisdn: str | None,
        amount_idr: int,
        request_message_id: str | None,
        at: datetime,
    ) -> Transaction:
        """A purchase just recorded (REQUESTED), as it reads back, without reading it."""
        stamp = at.astimezone(UTC)  # timestamps read back in UTC
        return cls(
            id=transaction_id,
            idempotency_key=idempotency_key,
            meter_number=meter_number,
            customer_id=customer_id,
            phone_msisdn=phone_msisdn,
            amount_idr=amount_idr,
            kwh=None,
            token_masked=None,
            has_token=False,
            pln_ref=None,
            switcher_ref=None,
            stan=None,
            response_code=None,
            meter_outcome=None,
            state=TransactionState.REQUESTED,
            state_at=stamp,
            request_message_id=request_message_id,
            created_at=stamp,
        )

    @classmethod
    def from_row(cls, row: Row[Any]) -> Transaction:
        m = row._mapping
        return cls(
            id=m["id"],
            idempotency_key=m["idempotency_key"],
            meter_number=m["meter_number"],
            customer_id=m["customer_id"],
            phone_msisdn=m["phone_msisdn"],
            amount_idr=m["amount_idr"],
            kwh=m["kwh"],
            token_masked=m["token_masked"],
            has_token=m["token_sealed"] is not None,
            pln_ref=m["pln_ref"],
            switcher_ref=m["switcher_ref"],
            stan=m["stan"],
            response_code=m["response_code"],
            meter_outcome=m["meter_outcome"],
            state=TransactionState(m["state"]),
            state_at=m["state_at"],
            request_message_id=m["request_message_id"],
            created_at=m["created_at"],
        )


async def get_transaction(conn: AsyncConnection, transaction_id: str) -> Transaction:
    row = (await conn.execute(select(t).where(t.c.id == transaction_id))).first()
    if row is None:
        raise NotFound(f"transaction {transaction_id} does not exist")
    return Transaction.from_row(row)


@dataclass(frozen=True, slots=True)
class NewPurchase:
    """One purchase for `create_transactions` (the arguments of `create_transaction`)."""

    idempotency_key: str
    meter_number: str
    customer_id: str
    amount_idr: int
    phone_msisdn: str | None
    request_message_id: str | None


@dataclass(frozen=True, slots=True)
class Recorded:
    """A purchase's transaction as `create_transactions` left it."""

    id: str
    request_message_id: str | None
    #: The transaction as this call recorded it; None: the key was recorded before.
    fresh: Transaction | None = None

    @property
    def created(self) -> bool:
        return self.fresh is not None


async def create_transactions(
    conn: AsyncConnection, purchases: Sequence[NewPurchase], *, at: datetime
) -> dict[str, Recorded]:
    """`create_transaction` for many purchases, set-wise: one multi-row INSERT ... ON
    CONFLICT DO NOTHING (the unique key decides, no read first), one multi-row INSERT of
    their first state stamps; keys recorded before are read back in one SELECT. By key."""
    if not purchases:
        return {}
    rows: list[dict[str, Any]] = []
    for purchase in purchases:
        if purchase.amount_idr <= 0:
            raise ValueError("amount_idr must be positive")
        rows.append(
            {
                "id": new_ulid(at),
                "idempotency_key": purchase.idempotency_key,
                "meter_number": purchase.meter_number,
                "customer_id": purchase.customer_id,
                "phone_msisdn": purchase.phone_msisdn,
                "amount_idr": purchase.amount_idr,
                "state": TransactionState.REQUESTED.value,
                "state_at": at,
                "request_message_id": purchase.request_message_id,
                "created_at": at,
            }
        )
    written = await insert_returning(
        conn, t, rows, returning=[t.c.idempotency_key], skip_conflicts_on=[t.c.idempotency_key]
    )
    fresh = {str(key) for (key,) in written}
    recorded = {
        p.idempotency_key: Recorded(
            row["id"],
            p.request_message_id,
            Transaction.requested(
                row["id"],
                idempotency_key=p.idempotency_key,
                meter_number=p.meter_number,
                customer_id=p.customer_id,
                phone_msisdn=p.phone_msisdn,
                amount_idr=p.amount_idr,
                request_message_id=p.request_message_id,
                at=at,
            ),
        )
        for p, row in zip(purchases, rows, strict=True)
        if row["idempotency_key"] in fresh
    }
    known = [row["idempotency_key"] for row in rows if row["idempotency_key"] not in fresh]
    if known:
        for r in await conn.execute(
            select(t.c.idempotency_key, t.c.id, t.c.request_message_id).where(
                t.c.idempotency_key.in_(known)
            )
        ):
            recorded[r.idempotency_key] = Recorded(r.id, r.request_message_id)
    await insert_many(
        conn,
        schema.transaction_states,
        [
            {
                "transaction_id": recorded[key].id,
                "state": TransactionState.REQUESTED.value,
                "at": at,
                "detail": None,
            }
            for key in (row["idempotency_key"] for row in rows)
            if key in fresh
        ],
    )
    return recorded


async def create_transaction(
    conn: AsyncConnection,
    *,
    idempotency_key: str,
    meter_number: str,
    customer_id: str,
    amount_idr: int,
    phone_msisdn: str | None = None,
    request_message_id: str | None = None,
    at: datetime | None = None,
) -> tuple[Transaction, bool]:
    """Record a purchase in state `requested`; (existing, False) for a repeated key."""
    if amount_idr <= 0:
        raise ValueError("amount_idr must be positive")
    when = at or utcnow()
    values: dict[str, Any] = {
        "id": new_ulid(when),
        "idempotency_key": idempotency_key,
        "meter_number": meter_number,
        "customer_id": customer_id,
        "phone_msisdn": phone_msisdn,
        "amount_idr": amount_idr,
        "state": TransactionState.REQUESTED.value,
        "state_at": when,
        "request_message_id": request_message_id,
        "created_at": when,
    }
    # No look-up first: the unique key decides, and a concurrent writer with the same key
    # (or an earlier try) wins without an error that would abort a PostgreSQL transaction.
    if not await insert_once(conn, t, values, key=[t.c.idempotency_key]):
        row = (await conn.execute(select(t).where(t.c.idempotency_key == idempotency_key))).first()
        if row is None:  # the key's row went between the two statements
            raise NotFound(f"transaction {idempotency_key!r} neither inserted nor found")
        return Transaction.from_row(row), False
    await start(conn, TRANSACTIONS, values["id"], TransactionState.REQUESTED, at=when)
    return (
        Transaction.requested(
            values["id"],
            idempotency_key=idempotency_key,
            meter_number=meter_number,
            customer_id=customer_id,
            phone_msisdn=phone_msisdn,
            amount_idr=amount_idr,
            request_message_id=request_message_id,
            at=when,
        ),
        True,
    )


async def set_transaction_state(
    conn: AsyncConnection,
    transaction_id: str,
    target: TransactionState,
    *,
    at: datetime | None = None,
    detail: str | None = None,
    **columns: Any,
) -> TransactionState:
    """Move along the transaction machine, optionally setting columns (pln_ref,
    switcher_ref, stan, response_code, meter_outcome, kwh) in the same UPDATE."""
    allowed = {"pln_ref", "switcher_ref", "stan", "response_code", "meter_outcome", "kwh"}
    unknown = set(columns) - allowed
    if unknown:
        raise ValueError(f"cannot set {', '.join(sorted(unknown))} through a transition")
    return await transition(
        conn, TRANSACTIONS, transaction_id, target, at=at, detail=detail, extra_values=columns
    )


def sealed_token(transaction_id: str, token: str, master: MasterKey) -> dict[str, Any]:
    """The columns that keep a token at rest: sealed under the master key (AAD = the
    transaction id) and masked; to be set in the UPDATE that moves the transaction."""
    return {
        "token_sealed": seal(master, token.encode("ascii"), aad=transaction_id),
        "token_master_id": master.key_id,
        "token_masked": mask_token(token),
    }


async def store_token(
    conn: AsyncConnection, transaction_id: str, token: str, master: MasterKey
) -> None:
    """Seal the 20-digit token onto the transaction (and keep its masked form)."""
    result = await conn.execute(
        update(t)
        .where(t.c.id == transaction_id)
        .values(**sealed_token(transaction_id, token, master))
    )
    if result.rowcount != 1:
        raise NotFound(f"transaction {transaction_id} does not exist")


async def reveal_token(conn: AsyncConnection, transaction_id: str, master: MasterKey) -> str:
    """The token in clear: only for sending it to the meter/customer. Raises SealError."""
    row = (
        await conn.execute(
            select(t.c.token_sealed, t.c.token_master_id).where(t.c.id == transaction_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"transaction {transaction_id} does not exist")
    return open_token(master, transaction_id, row.token_sealed, row.token_master_id)


def open_token(
    master: MasterKey, transaction_id: str, sealed: bytes | None, master_id: str | None
) -> str:
    """The token in clear from its sealed columns, already read. Raises NotFound (none
    yet) or SealError (sealed under another master key, or damaged)."""
    if sealed is None:
        raise NotFound(f"transaction {transaction_id} has no token yet")
    if master_id != master.key_id:
        raise SealError(
            f"token of {transaction_id} was sealed under {master_id}, "
            f"not the configured {master.key_id}"
        )
    return open_sealed(master, sealed, aad=transaction_id).decode("ascii")


async def lock_in_states(
    conn: AsyncConnection, ids: Sequence[str], states: Collection[TransactionState]
) -> dict[str, TransactionState]:
    """The transactions among `ids` in one of `states`, read and locked in id order (the
    order every unit of work locks purchases in): their states, by id."""
    t = schema.transactions
    found: dict[str, TransactionState] = {}
    for part in chunks(sorted(ids)):
        rows = await conn.execute(
            select(t.c.id, t.c.state).where(t.c.id.in_(part)).order_by(t.c.id).with_for_update()
        )
        for row in rows:
            state = TransactionState(row.state)
            if state in states:
                found[str(row.id)] = state
    return found
