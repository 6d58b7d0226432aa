"""Meters' TOKEN_RESULT answers, set-wise: a batch's answers applied with a fixed number of
statements whatever its size, as `meter_batch.py` does for telemetry.

Per batch: one read of the deliveries the answers name, one locking read of their
transactions (FOR UPDATE, in id order, after the batch has locked the meters: meter
first, then purchase), one read of the phones of purchases that have none; then the
decision in memory (`_decide`: each answer in the batch's order, the transactions' states
walked as they move), and one statement each for the transactions' moves and their state
stamps, the deliveries finished, the receipts and refusals queued, the reports to P2APST
(`hub_reports`, sealed), the answers' messages marked processed and charged, the SLA
breaches. A refused token also opens a helpdesk item (one INSERT each: rare). A single
answer is a batch of one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import TokenOutcome, TokenResult
from operator_data.commands.replies import Reply, render
from operator_data.crypto.sealing import seal
from operator_data.hub.charging import charge_many
from operator_data.hub.context import HubContext, Unit
from operator_data.hub.formatting import kwh, masked_groups, rupiah, short_ref, token_groups
from operator_data.hub.helpdesk import open_incident
from operator_data.hub.journal import seal_report
from operator_data.hub.lifecycle import ANSWERABLE, FINISHED
from operator_data.hub.outbound import PRIORITY_RECEIPT, SEALED
from operator_data.hub.sla import Metric, SlaBreach
from operator_data.store import Flow, MessageState, TransactionState, schema
from operator_data.store.bulk import insert_many, insert_returning
from operator_data.store.messages import Message, Outgoing, enqueue_outbound_many
from operator_data.store.transactions import open_token
from operator_data.store.workflow_schema import hub_deliveries, hub_reports
from p2apst_adapter.model import TokenReason, TokenReport

log = logging.getLogger("operator_data.hub.delivery")
T = TransactionState
_CHUNK = 500
_TX_COLUMNS = (
    "id", "state", "state_at", "customer_id", "meter_number", "phone_msisdn", "amount_idr",
    "switcher_ref", "token_sealed", "token_master_id",
)  # fmt: skip
#: Where a transaction may take the meter's answer from (TOKEN_ISSUED: the answer
#: overtook the send result, and moves it through TOKEN_SENT first).

REPORT_REASON = {
    TokenOutcome.ACCEPTED: TokenReason.ACCEPTED,
    TokenOutcome.USED: TokenReason.USED,
    TokenOutcome.OLD: TokenReason.OLD,
    TokenOutcome.INVALID_CRC: TokenReason.INVALID,
    TokenOutcome.KEY_EXPIRED: TokenReason.KEY_EXPIRED,
    TokenOutcome.OVERFLOW: TokenReason.OTHER,
}
# Why the meter refused, in words that fit the TOKEN_REJECTED reply.
CUSTOMER_REASON = {
    TokenOutcome.USED: "token sudah dipakai",
    TokenOutcome.OLD: "token kedaluwarsa",
    TokenOutcome.INVALID_CRC: "token tidak valid",
    TokenOutcome.KEY_EXPIRED: "kunci meter kedaluwarsa",
    TokenOutcome.OVERFLOW: "total kWh melebihi batas",
}


@dataclass(frozen=True, slots=True)
class MeterAnswer:
    """A TOKEN_RESULT frame, authentic and logged (its message still `received`)."""

    message: Message
    meter_number: str
    result: TokenResult
    arrived_at: datetime  # when it reached the gateway


@dataclass(slots=True)
class _Tx:
    id: str
    state: TransactionState
    state_at: datetime
    customer_id: str
    meter_number: str
    phone: str | None
    amount_idr: int
    switcher_ref: str | None
    token_sealed: bytes | None
    token_master_id: str | None


@dataclass(slots=True)
class _Effects:
    moves: list[dict[str, Any]] = field(default_factory=list)  # transactions: one per move
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)  # by transaction
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    texts: list[Outgoing] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    reports: list[TokenReport] = field(default_factory=list)
    report_rows: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[SlaBreach] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # answer's message id -> note


async def apply_token_results(
    ctx: HubContext, conn: AsyncConnection, unit: Unit, answers: Sequence[MeterAnswer]
) -> dict[str, str]:
    """Act on the answers in the caller's transaction (their meters locked already);
    returns each answer's note for the message log, by message id."""
    if not answers:
        return {}
    deliveries = await _deliveries(conn, sorted({a.result.reference for a in answers}))
    txs = await _lock(conn, sorted({row["transaction_id"] for row in deliveries.values()}))
    await _fill_phones(conn, txs)
    effects = _decide(ctx, answers, deliveries, txs)
    await _write(ctx, conn, answers, effects)
    client = ctx.p2apst
    if client is not None and effects.reports:
        # Recorded above in hub_reports (the client's outbox), with the answers: the
        # client only has to be told, after the commit.
        async def send_reports() -> None:
            client.reports_recorded()

        unit.later(send_reports)
    if effects.breaches:
        breaches = list(effects.breaches)

        async def publish() -> None:
            for breach in breaches:
                ctx.sla.publish(breach)

        unit.later(publish)
    return effects.notes


async def _deliveries(conn: AsyncConnection, refs: list[int]) -> dict[int, dict[str, Any]]:
    d = hub_deliveries
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(refs), _CHUNK):
        rows = await conn.execute(
            select(d.c.id, d.c.transaction_id, d.c.meter_number, d.c.attempts).where(
                d.c.id.in_(refs[start : start + _CHUNK])
            )
        )
        found.update({int(r.id): dict(r._mapping) for r in rows})
    return found


async def _lock(conn: AsyncConnection, ids: list[str]) -> dict[str, _Tx]:
    t = schema.transactions
    found: dict[str, _Tx] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(
            select(
                t.c.id,
                t.c.state,
                t.c.state_at,
                t.c.customer_id,
                t.c.meter_number,
                t.c.phone_msisdn,
                t.c.amount_idr,
                t.c.switcher_ref,
                t.c.token_sealed,
                t.c.token_master_id,
            )
            .where(t.c.id.in_(ids[start : start + _CHUNK]))
            .order_by(t.c.id)
            .with_for_update()
        )
        for r in rows:
            found[r.id] = _Tx(
                r.id, T(r.state), r.state_at, r.customer_id, r.meter_number, r.phone_msisdn,
                int(r.amount_idr), r.switcher_ref, r.token_sealed, r.token_master_id,
            )  # fmt: skip
    return found


async def _fill_phones(conn: AsyncConnection, txs: dict[str, _Tx]) -> None:
    """A purchase without a phone (a pushed token) is told on its customer's first phone."""
    customers = sorted({tx.customer_id for tx in txs.values() if tx.phone is None})
    if not customers:
        return
    phones = schema.customer_phones
    first: dict[str, str] = {}
    rows = await conn.execute(
        select(phones.c.customer_id, phones.c.msisdn)
        .where(phones.c.customer_id.in_(customers))
        .order_by(phones.c.customer_id, phones.c.created_at, phones.c.msisdn)
    )
    for customer_id, msisdn in rows:
        first.setdefault(customer_id, msisdn)
    for tx in txs.values():
        if tx.phone is None:
            tx.phone = first.get(tx.customer_id)


def _decide(
    ctx: HubContext,
    answers: Sequence[MeterAnswer],
    deliveries: dict[int, dict[str, Any]],
    txs: dict[str, _Tx],
) -> _Effects:
    effects = _Effects()
    now = ctx.now()
    for answer in answers:
        row = deliveries.get(answer.result.reference)
        note = _one(ctx, answer, row, txs, effects, now)
        effects.notes[answer.message.id] = note
    return effects


def _move(effects: _Effects, tx: _Tx, target: T, at: datetime, **extra: Any) -> None:
    detail = extra.pop("detail", None)
    effects.moves.append(
        {"transaction_id": tx.id, "state": target.value, "at": at, "detail": detail}
    )
    final = effects.finals.setdefault(tx.id, {"b_id": tx.id, "b_from": tx.state.value})
    final.update({"b_state": target.value, "b_at": at, "b_outcome": None} | extra)
    tx.state, tx.state_at = target, at


def _one(
    ctx: HubContext,
    answer: MeterAnswer,
    row: dict[str, Any] | None,
    txs: dict[str, _Tx],
    effects: _Effects,
    now: datetime,
) -> str:
    result = answer.result
    if row is None or row["meter_number"] != answer.meter_number:
        return f"no token delivery {result.reference} for this meter"
    tx = txs.get(row["transaction_id"])
    if tx is None:
        return f"no transaction for token delivery {result.reference}"
    if tx.state in FINISHED:
        return f"repeated answer for {tx.id}"
    if tx.state not in ANSWERABLE:
        return f"answer for {tx.id} in state {tx.state.value}: not acted on"
    # A resend the meter calls USED means an earlier copy was applied and its answer lost.
    accepted = result.outcome is TokenOutcome.ACCEPTED or (
        result.outcome is TokenOutcome.USED and row["attempts"] > 1
    )
    # Stamped when the answer reached the gateway, never before the stage it ends began.
    arrived = ctx.event_time(answer.arrived_at, after=tx.state_at)
    if tx.state is T.TOKEN_ISSUED:  # the answer overtook the send result
        _move(effects, tx, T.TOKEN_SENT, arrived)
    if tx.state is T.TOKEN_SENT:
        breach = ctx.sla.measure(
            Metric.METER_ANSWER,
            subject_type="transaction",
            subject_id=tx.id,
            started_at=tx.state_at,
            ended_at=arrived,
            now=now,
        )
        if breach is not None:
            effects.breaches.append(breach)
    target = T.APPLIED if accepted else T.METER_REJECTED
    _move(
        effects,
        tx,
        target,
        arrived,
        detail=f"meter: {result.outcome.name}",
        b_outcome=result.outcome.name.lower(),
    )
    effects.deliveries.append(
        {"b_id": row["id"], "b_outcome": result.outcome.name.lower(), "b_at": arrived}
    )
    token = _token(ctx, tx)
    if accepted and tx.phone is not None:
        values = {
            "amount": rupiah(tx.amount_idr),
            "meter": tx.meter_number,
            "kwh": kwh(result.added_kwh),
            "credit": kwh(result.credit_kwh),
            "ref": short_ref(tx.id),
        }
        key = f"receipt:{tx.id}"
        text = render(Reply.RECEIPT, ctx.lang, token=token_groups(token), **values)
        effects.texts.append(
            Outgoing(
                flow=Flow.HUB_TO_CUSTOMER,
                idempotency_key=key,
                destination=tx.phone,
                # The token in the SMS: sealed at rest, masked in the log.
                payload=SEALED + seal(ctx.master, text.encode("utf-8"), aad=key),
                customer_id=tx.customer_id,
                meter_number=tx.meter_number,
                kind="receipt",
                body=render(Reply.RECEIPT, ctx.lang, token=masked_groups(token), **values),
                priority=PRIORITY_RECEIPT,
                transaction_id=tx.id,
            )
        )
    elif not accepted:
        effects.incidents.append(
            {
                "category": "token_rejected",
                "subject": (
                    f"Meter {answer.meter_number} refused token {short_ref(tx.id)}: "
                    f"{result.outcome.name}"
                ),
                "customer_id": tx.customer_id,
                "meter_number": answer.meter_number,
                "msisdn": tx.phone,
                "transaction_id": tx.id,
            }
        )
        if tx.phone is not None:
            text = render(
                Reply.TOKEN_REJECTED,
                ctx.lang,
                meter=answer.meter_number,
                reason=CUSTOMER_REASON.get(result.outcome, "ditolak meter"),
                ref=short_ref(tx.id),
            )
            effects.texts.append(
                Outgoing(
                    flow=Flow.HUB_TO_CUSTOMER,
                    idempotency_key=f"rejected:{tx.id}",
                    destination=tx.phone,
                    payload=text.encode("utf-8"),
                    customer_id=tx.customer_id,
                    meter_number=answer.meter_number,
                    kind="token-rejected",
                    body=text,
                    priority=PRIORITY_RECEIPT,
                    transaction_id=tx.id,
                )
            )
    report = TokenReport(
        report_id=f"R{tx.id}",
        meter_number=answer.meter_number,
        switcher_reference=(tx.switcher_ref or tx.id)[:32],
        token=token,
        accepted=accepted,
        reason=TokenReason.ACCEPTED if accepted else REPORT_REASON[result.outcome],
        event_time=result.at,
        credit_kwh=result.credit_kwh,
    )
    effects.reports.append(report)
    effects.report_rows.append(
        {
            "report_id": report.report_id,
            "transaction_id": tx.id,
            "report_sealed": seal_report(ctx.master, report),
            "master_id": ctx.master.key_id,
            "acknowledged": False,
            "created_at": now,
            "acknowledged_at": None,
        }
    )
    return f"{target.value}: {result.outcome.name}"


def _token(ctx: HubContext, tx: _Tx) -> str:
    """The token in clear, only to send it (receipt, report): opened from the row read."""
    return open_token(ctx.master, tx.id, tx.token_sealed, tx.token_master_id)


async def _write(
    ctx: HubContext, conn: AsyncConnection, answers: Sequence[MeterAnswer], effects: _Effects
) -> None:
    now = ctx.now()
    t, d, m = schema.transactions, hub_deliveries, schema.messages
    if effects.finals:
        await conn.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"), t.c.state == bindparam("b_from"))
            .values(
                state=bindparam("b_state"),
                state_at=bindparam("b_at"),
                meter_outcome=bindparam("b_outcome"),
            ),
            list(effects.finals.values()),
        )
        await insert_many(conn, schema.transaction_states, effects.moves)
    if effects.deliveries:
        await conn.execute(
            update(d)
            .where(d.c.id == bindparam("b_id"))
            .values(
                next_check_at=None, outcome=bindparam("b_outcome"), finished_at=bindparam("b_at")
            ),
            effects.deliveries,
        )
    await enqueue_outbound_many(conn, effects.texts, at=now)
    for incident in effects.incidents:
        await open_incident(conn, at=now, **incident)
    if effects.report_rows:
        # A report id written before (it cannot be, short of a restored database) stays.
        await insert_returning(
            conn,
            hub_reports,
            effects.report_rows,
            returning=[hub_reports.c.report_id],
            skip_conflicts_on=[hub_reports.c.report_id],
        )
    if effects.breaches:
        await ctx.sla.record(conn, effects.breaches, now)
    # The answers' own messages: processed, with the note, and charged.
    await conn.execute(
        update(m)
        .where(m.c.id == bindparam("b_id"), m.c.state == MessageState.RECEIVED.value)
        .values(state=MessageState.PROCESSED.value, state_at=bindparam("b_at")),
        [{"b_id": a.message.id, "b_at": now} for a in answers],
    )
    await insert_many(
        conn,
        schema.message_states,
        [
            {
                "message_id": a.message.id,
                "state": MessageState.PROCESSED.value,
                "at": now,
                "detail": effects.notes.get(a.message.id, "")[:500],
            }
            for a in answers
        ],
    )
    await charge_many(ctx, conn, [a.message.id for a in answers])
