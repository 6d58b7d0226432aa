"""Customer commands at the short code (flow customer -> hub): BELI, SALDO, STATUS,
BANTUAN, STOP, MULAI. Every SMS gets exactly one one-SMS answer, never silence.

A purchase is bound to a registered phone and its PIN; its idempotency key comes from the
inbound SMS, and the same text from the same phone within `hub.duplicate_window_s` is
answered as a duplicate instead of buying again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import BalanceQuery
from operator_data.commands import (
    Balance,
    Buy,
    Command,
    CommandError,
    Help,
    Start,
    Status,
    Stop,
    parse,
)
from operator_data.commands.replies import Lang, Reply, render, reply_for_error
from operator_data.crypto.sealing import SealError
from operator_data.hub.charging import charge
from operator_data.hub.context import HubContext
from operator_data.hub.formatting import denominations, kwh, rupiah, short_ref, wib
from operator_data.hub.inbound import CustomerCommand
from operator_data.hub.outbound import PRIORITY_REPLY, meter_sim_msisdn, queue_frame, queue_text
from operator_data.registry import PinLocked, PinOk, PinWrong, RegistryError
from operator_data.store import MessageState, NotFound, schema
from operator_data.store.transactions import create_transaction
from operator_data.store.transitions import MESSAGES, advance

log = logging.getLogger("operator_data.hub.customer")

_TX_STATE_WORDS = {
    "requested": "diproses",
    "submitted": "diproses",
    "advising": "diproses",
    "token_issued": "dikirim",
    "token_sent": "dikirim",
    "applied": "berhasil",
    "reported": "berhasil",
    "declined": "gagal",
    "meter_rejected": "ditolak",
    "meter_timeout": "tertunda",
}
_METER_STATE_WORDS = {
    "requested": "BARU",
    "connected": "TERHUBUNG",
    "active": "AKTIF",
    "suspended": "DIBLOKIR",
    "removed": "DICABUT",
}


@dataclass(frozen=True, slots=True)
class Purchase:
    """A BELI accepted: recorded in the transaction that answers it (see `_reply`)."""

    meter_number: str
    amount_idr: int
    customer_id: str
    phone: str


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    kind: str
    meter_number: str | None = None
    purchase: Purchase | None = None  # to record with the answer, then start


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer


async def handle_command(
    ctx: HubContext, work: CustomerCommand, start_purchase: Callable[[str], None]
) -> None:
    """Answer one logged customer SMS and mark it processed (in one transaction)."""
    try:
        command: Command | None = parse(work.text)
        error: CommandError | None = None
    except CommandError as failure:
        command, error = None, failure
    keyword = type(command).__name__.upper() if command is not None else "invalid"
    try:
        if error is not None:
            answer = Answer(reply_for_error(error, ctx.lang, _denominations(ctx)), "help")
        elif isinstance(command, Help):
            answer = Answer(render(Reply.HELP, ctx.lang), "help")
        elif work.sender is None:
            answer = Answer(render(Reply.NOT_REGISTERED, ctx.lang), "not-registered")
        elif isinstance(command, Stop | Start):
            opted_out = isinstance(command, Stop)
            await ctx.registry.set_opt_out(
                work.sender.customer_id, opted_out, actor=f"sms:{work.sender.msisdn}"
            )
            reply = Reply.STOPPED if opted_out else Reply.STARTED
            answer = Answer(render(reply, ctx.lang), reply.value)
        elif isinstance(command, Balance):
            answer = await _balance(ctx, work, command.meter)
        elif isinstance(command, Status):
            answer = await _status(ctx, work, command.meter)
        else:
            assert isinstance(command, Buy)
            answer = await _buy(ctx, work, command)
    except _Refused as refused:
        answer = refused.answer
    started = await _reply(ctx, work, answer, keyword)
    if started is not None:
        start_purchase(started)


async def _reply(
    ctx: HubContext, work: CustomerCommand, answer: Answer, keyword: str
) -> str | None:
    """Answer the SMS, mark it processed and charge it, in one transaction; with a
    purchase, record it there too. Returns the transaction to start, if any."""
    peer = work.message.peer_msisdn
    started: str | None = None
    async with ctx.unit() as (conn, _):
        # Marked processed first: the conditional UPDATE is the "answered once" check. Two
        # workers answering the same SMS (a redelivered event) take turns on its row, and
        # the second finds it processed: nothing to do, the caller acks. The purchase is
        # recorded in this same transaction, so an answered SMS always has its purchase
        # (an interrupted start is resumed by the sweep).
        if not await advance(
            conn,
            MESSAGES,
            work.message.id,
            MessageState.PROCESSED,
            at=ctx.now(),
            only_from=[MessageState.RECEIVED],
            detail=answer.kind,
            extra_values={"kind": keyword[:32], "meter_number": answer.meter_number},
        ):
            log.debug("command %s answered before; redelivery ignored", work.message.id)
            return None
        if answer.purchase is not None:
            answer, started = await _record_purchase(ctx, conn, work, answer.purchase)
        if peer is not None:
            await queue_text(
                ctx,
                conn,
                idempotency_key=f"reply:{work.message.id}",
                to=peer,
                text=answer.text,
                kind=answer.kind,
                customer_id=work.sender.customer_id if work.sender else None,
                meter_number=answer.meter_number,
                in_reply_to=work.message.id,
                priority=PRIORITY_REPLY,
            )
        await charge(ctx, conn, work.message.id)
    return started


async def _record_purchase(
    ctx: HubContext, conn: AsyncConnection, work: CustomerCommand, purchase: Purchase
) -> tuple[Answer, str | None]:
    """The transaction of an accepted BELI, keyed by its SMS (a second copy of the SMS
    finds the first one's), and the answer that names it."""
    tx, created = await create_transaction(
        conn,
        idempotency_key=work.message.idempotency_key,
        meter_number=purchase.meter_number,
        customer_id=purchase.customer_id,
        amount_idr=purchase.amount_idr,
        phone_msisdn=purchase.phone,
        request_message_id=work.message.id,
        at=ctx.now(),
    )
    if not created and tx.request_message_id != work.message.id:
        text = render(Reply.PURCHASE_DUPLICATE, ctx.lang, ref=short_ref(tx.id))
        return Answer(text, "purchase-duplicate", purchase.meter_number), None
    text = render(
        Reply.PURCHASE_ACCEPTED,
        ctx.lang,
        amount=rupiah(purchase.amount_idr),
        meter=purchase.meter_number,
        ref=short_ref(tx.id),
    )
    return Answer(text, "purchase-accepted", purchase.meter_number), tx.id


def _denominations(ctx: HubContext) -> str:
    return denominations(ctx.settings.hub.denominations_idr)


async def _pick_meter(ctx: HubContext, work: CustomerCommand, named: str | None) -> str:
    assert work.sender is not None
    meters = await ctx.registry.meters_of(work.sender.customer_id)
    numbers = [m.meter_number for m in meters if m.state.value != "removed"]
    if named is not None:
        if named not in numbers:
            raise _Refused(
                Answer(render(Reply.NOT_YOUR_METER, ctx.lang, meter=named), "not-your-meter")
            )
        return named
    if len(numbers) == 1:
        return numbers[0]
    if not numbers:
        raise _Refused(Answer(render(Reply.NOT_REGISTERED, ctx.lang), "not-registered"))
    example = f"SALDO {numbers[0]}"
    raise _Refused(Answer(render(Reply.WHICH_METER, ctx.lang, example=example), "which-meter"))


async def _balance(ctx: HubContext, work: CustomerCommand, named: str | None) -> Answer:
    meter = await _pick_meter(ctx, work, named)
    readings = schema.telemetry_readings
    async with ctx.unit() as (conn, _):
        last = (
            await conn.execute(
                select(readings.c.credit_kwh, readings.c.meter_time, readings.c.received_at)
                .where(readings.c.meter_number == meter, readings.c.credit_kwh.is_not(None))
                .order_by(readings.c.received_at.desc(), readings.c.id.desc())
                .limit(1)
            )
        ).first()
        await _ask_meter(ctx, conn, work, meter)
    if last is None:
        return Answer(render(Reply.BALANCE_UNKNOWN, ctx.lang, meter=meter), "balance", meter)
    at = last.meter_time or last.received_at
    text = render(Reply.BALANCE, ctx.lang, meter=meter, credit=kwh(last.credit_kwh), at=wib(at))
    return Answer(text, "balance", meter)


async def _ask_meter(
    ctx: HubContext, conn: AsyncConnection, work: CustomerCommand, meter: str
) -> None:
    """Ask the meter for a fresh balance; its BALANCE_REPLY is passed on to this phone."""
    to = await meter_sim_msisdn(conn, meter)
    if to is None:
        return
    try:
        key = await ctx.registry.comms_key(meter)
    except (NotFound, SealError, RegistryError):
        return
    await queue_frame(
        ctx,
        conn,
        key,
        BalanceQuery(),
        idempotency_key=f"balance-query:{work.message.id}",
        to=to,
        customer_id=work.sender.customer_id if work.sender else None,
        in_reply_to=work.message.id,
    )


async def _status(ctx: HubContext, work: CustomerCommand, named: str | None) -> Answer:
    meter_number = await _pick_meter(ctx, work, named)
    meter = await ctx.registry.get_meter(meter_number)
    txs = schema.transactions
    async with ctx.store.read() as conn:
        last = (
            await conn.execute(
                select(txs.c.id, txs.c.amount_idr, txs.c.state, txs.c.created_at)
                .where(txs.c.meter_number == meter_number)
                .order_by(txs.c.created_at.desc())
                .limit(1)
            )
        ).first()
    state = _METER_STATE_WORDS.get(meter.state.value, meter.state.value.upper())
    if last is None:
        values = {"amount": "0", "tx_state": "-", "at": "-", "ref": "-"}
    else:
        values = {
            "amount": rupiah(last.amount_idr),
            "tx_state": _TX_STATE_WORDS.get(last.state, last.state),
            "at": wib(last.created_at),
            "ref": short_ref(last.id),
        }
    text = render(Reply.STATUS, ctx.lang, meter=meter_number, state=state, **values)
    return Answer(text, "status", meter_number)


#: Why a purchase is refused when the hub has no P2APST link configured.
NO_P2APST_REASON = {
    Lang.ID: "layanan pembelian belum tersedia",
    Lang.EN: "purchases are not available",
}


async def _buy(ctx: HubContext, work: CustomerCommand, command: Buy) -> Answer:
    assert work.sender is not None
    meter = await _pick_meter(ctx, work, command.meter)
    if command.amount_rp not in ctx.settings.hub.denominations_idr:
        text = render(
            Reply.DENOMINATION,
            ctx.lang,
            amount=rupiah(command.amount_rp),
            denominations=_denominations(ctx),
        )
        return Answer(text, "denomination", meter)
    try:
        verdict = await ctx.registry.verify_pin(work.sender.msisdn, command.pin)
    except (NotFound, RegistryError) as error:
        # E.g. a PIN hash made under a master key since rotated: the operator must see why.
        log.warning("purchase by %s refused: %s", work.sender.msisdn, error)
        return Answer(render(Reply.NOT_REGISTERED, ctx.lang), "no-pin", meter)
    if isinstance(verdict, PinWrong):
        text = render(Reply.WRONG_PIN, ctx.lang, attempts_left=verdict.attempts_left)
        return Answer(text, "wrong-pin", meter)
    if isinstance(verdict, PinLocked):
        return Answer(render(Reply.PIN_LOCKED, ctx.lang, until=wib(verdict.until)), "locked", meter)
    assert isinstance(verdict, PinOk)
    if ctx.p2apst is None:
        # No P2APST link on this hub: refuse now rather than accept a purchase nobody makes.
        text = render(
            Reply.PURCHASE_FAILED,
            ctx.lang,
            amount=rupiah(command.amount_rp),
            reason=NO_P2APST_REASON[ctx.lang],
        )
        return Answer(text, "purchase-unavailable", meter)
    now = ctx.now()
    window = timedelta(seconds=ctx.settings.hub.duplicate_window_s)
    txs, msgs = schema.transactions, schema.messages
    # A read, before the answer's write transaction: commands from one phone are handled
    # one at a time (Hub._command), and the same SMS twice is caught by its key there.
    async with ctx.store.read() as conn:
        duplicate = (
            await conn.execute(
                select(txs.c.id)
                .join(msgs, msgs.c.id == txs.c.request_message_id)
                .where(
                    txs.c.phone_msisdn == work.sender.msisdn,
                    txs.c.created_at >= now - window,
                    msgs.c.body == work.message.body,
                    msgs.c.id != work.message.id,
                )
                .order_by(txs.c.created_at)
                .limit(1)
            )
        ).first()
    if duplicate is not None:
        text = render(Reply.PURCHASE_DUPLICATE, ctx.lang, ref=short_ref(duplicate.id))
        return Answer(text, "purchase-duplicate", meter)
    # The text of the acceptance names the transaction: written with it, in `_reply`.
    intent = Purchase(meter, command.amount_rp, work.sender.customer_id, work.sender.msisdn)
    return Answer("", "purchase-accepted", meter, intent)
