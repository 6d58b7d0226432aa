"""Customer commands at the short code (flow customer -> hub): BELI, SALDO, STATUS,
BANTUAN, STOP, MULAI. Every SMS gets at most one one-SMS answer: exactly one within the
reply budgets (hub/reply_budget.py), which keep the short code from being a reflector.

A purchase is bound to a registered phone and its PIN; its idempotency key comes from the
inbound SMS, and the same text from the same phone within `hub.duplicate_window_s` is
answered as a duplicate instead of buying again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import BalanceQuery
from operator_data.commands import (
    Balance,
    Buy,
    Command,
    CommandError,
    Complain,
    Help,
    Start,
    Status,
    Stop,
    parse,
)
from operator_data.commands.replies import Lang, Reply, render, reply_for_error
from operator_data.complaints import sms as complaint_sms
from operator_data.complaints import store as complaint_store
from operator_data.crypto.sealing import SealError
from operator_data.hub import reply_budget
from operator_data.hub.charging import charge_many
from operator_data.hub.context import HubContext
from operator_data.hub.formatting import denominations, kwh, rupiah, short_ref, wib
from operator_data.hub.helpdesk import open_incident
from operator_data.hub.inbound import CustomerCommand
from operator_data.hub.outbound import PRIORITY_REPLY, meter_sim_msisdn, queue_frame
from operator_data.registry import Meter, PinLocked, PinOk, PinResult, PinWrong, RegistryError
from operator_data.store import Flow, MessageState, NotFound, schema
from operator_data.store.bulk import insert_many
from operator_data.store.messages import Outgoing, enqueue_outbound_many
from operator_data.store.transactions import NewPurchase, Transaction, create_transactions

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
class Incident:
    """A helpdesk item to open with the answer (e.g. a phone locked out again and again)."""

    category: str
    subject: str
    notes: str
    msisdn: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    kind: str
    meter_number: str | None = None
    purchase: Purchase | None = None  # to record with the answer, then start
    incident: Incident | None = None  # to open with the answer
    complaint: complaint_store.NewComplaint | None = None  # ADUAN: to record with the answer


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer


@dataclass(frozen=True, slots=True)
class _Answered:
    work: CustomerCommand
    answer: Answer
    keyword: str


async def handle_command(
    ctx: HubContext, work: CustomerCommand, start_purchase: Callable[[str | Transaction], None]
) -> None:
    """Answer one logged customer SMS: a batch of one (see `answer_commands`)."""
    await answer_commands(ctx, [work], start_purchase)


async def answer_commands(
    ctx: HubContext,
    works: Sequence[CustomerCommand],
    start_purchase: Callable[[str | Transaction], None],
) -> None:
    """Answer logged customer SMS and mark them processed, set-wise: per round, the reads
    every BELI needs (meters, PINs, the duplicate window) once for all, then one unit of
    work that marks them processed, records the purchases, queues the replies and charges
    the SMS, with one multi-row statement per table. A phone's second SMS in the batch is
    answered in the next round, after its first (a BELI twice is then a duplicate)."""
    for batch in _rounds(works):
        answered = await _answers(ctx, batch)
        for transaction in await _reply(ctx, answered):
            start_purchase(transaction)


def _rounds(works: Sequence[CustomerCommand]) -> list[list[CustomerCommand]]:
    rounds: list[list[CustomerCommand]] = []
    seen: dict[str, int] = {}
    for work in works:
        phone = work.message.peer_msisdn or work.message.id
        n = seen.get(phone, 0)
        seen[phone] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(work)
    return rounds


def _parse(work: CustomerCommand) -> Command | CommandError:
    try:
        return parse(work.text)
    except CommandError as failure:
        return failure


async def _answers(ctx: HubContext, works: Sequence[CustomerCommand]) -> list[_Answered]:
    parsed = [(work, _parse(work)) for work in works]
    buys = {
        work.message.id: (work, command)
        for work, command in parsed
        if isinstance(command, Buy) and work.sender is not None
    }
    bought = await _buy_many(ctx, list(buys.values())) if buys else {}
    answered = []
    for work, command in parsed:
        error = isinstance(command, CommandError)
        keyword = "invalid" if error else type(command).__name__.upper()
        try:
            answer = await _answer(ctx, work, command, bought)
        except _Refused as refused:
            answer = refused.answer
        answered.append(_Answered(work, answer, keyword))
    return answered


async def _answer(
    ctx: HubContext,
    work: CustomerCommand,
    command: Command | CommandError,
    bought: dict[str, Answer],
) -> Answer:
    if isinstance(command, CommandError):
        return Answer(reply_for_error(command, ctx.lang, _denominations(ctx)), "help")
    if isinstance(command, Help):
        return Answer(render(Reply.HELP, ctx.lang), "help")
    if isinstance(command, Complain):  # an unregistered phone may complain too
        opened = complaint_sms.open_by_sms(
            message_id=work.message.id,
            msisdn=work.message.peer_msisdn,
            customer_id=work.sender.customer_id if work.sender else None,
            text=command.text,
            received_at=work.message.created_at,
            lang=ctx.lang,
        )
        return Answer(opened.reply, "complaint-opened", complaint=opened.complaint)
    if work.sender is None:
        return Answer(render(Reply.NOT_REGISTERED, ctx.lang), "not-registered")
    if isinstance(command, Stop | Start):
        opted_out = isinstance(command, Stop)
        await ctx.registry.set_opt_out(
            work.sender.customer_id, opted_out, actor=f"sms:{work.sender.msisdn}"
        )
        reply = Reply.STOPPED if opted_out else Reply.STARTED
        return Answer(render(reply, ctx.lang), reply.value)
    if isinstance(command, Balance):
        return await _balance(ctx, work, command.meter)
    if isinstance(command, Status):
        return await _status(ctx, work, command.meter)
    assert isinstance(command, Buy)
    return bought[work.message.id]


async def _reply(ctx: HubContext, answered: Sequence[_Answered]) -> list[str | Transaction]:
    """Answer the SMS, mark them processed and charge them, in one unit of work; record
    the purchases there too. Returns the transactions to start."""
    started: list[str | Transaction] = []
    async with ctx.unit() as (conn, _):
        # Marked processed first: the conditional UPDATE is the "answered once" check. Two
        # workers answering the same SMS (a redelivered event) take turns on its row, and
        # the second finds it processed: nothing to do, the caller acks. The purchase is
        # recorded in this same transaction, so an answered SMS always has its purchase
        # (an interrupted start is resumed by the sweep).
        fresh = await _still_received(conn, [a.work.message.id for a in answered])
        todo = [a for a in answered if a.work.message.id in fresh]
        for a in answered:
            if a.work.message.id not in fresh:
                log.debug("command %s answered before; redelivery ignored", a.work.message.id)
        if not todo:
            return started
        now = ctx.now()
        silent = await reply_budget.apply(conn, _asks(todo), now, ctx.settings.hub)
        todo = [
            _silenced(a, silent[a.work.message.id]) if a.work.message.id in silent else a
            for a in todo
        ]
        await _mark_processed(conn, todo, now)
        purchases = [a for a in todo if a.answer.purchase is not None]
        if purchases:
            todo = await _record_purchases(ctx, conn, todo, purchases, now, started)
        await enqueue_outbound_many(
            conn,
            [
                Outgoing(
                    flow=Flow.HUB_TO_CUSTOMER,
                    idempotency_key=f"reply:{a.work.message.id}",
                    destination=a.work.message.peer_msisdn,
                    payload=a.answer.text.encode("utf-8"),
                    customer_id=a.work.sender.customer_id if a.work.sender else None,
                    meter_number=a.answer.meter_number,
                    kind=a.answer.kind,
                    body=a.answer.text,
                    priority=PRIORITY_REPLY,
                    in_reply_to=a.work.message.id,
                )
                for a in todo
                if a.work.message.peer_msisdn is not None and a.work.message.id not in silent
            ],
            at=now,
        )
        for a in todo:
            if a.answer.incident is not None:
                i = a.answer.incident
                await open_incident(
                    conn,
                    category=i.category,
                    subject=i.subject,
                    notes=i.notes,
                    msisdn=i.msisdn,
                    customer_id=i.customer_id,
                    at=now,
                )
            if a.answer.complaint is not None:
                await complaint_store.record(conn, a.answer.complaint)
        await charge_many(ctx, conn, [a.work.message.id for a in todo])
    return started


def _asks(answered: Sequence[_Answered]) -> list[reply_budget.Ask]:
    asks = []
    for a in answered:
        peer = a.work.message.peer_msisdn
        if peer is None:
            continue  # nobody to answer
        text = a.work.text if isinstance(a.work.text, str) else a.work.text.decode(errors="replace")
        if a.answer.purchase is not None:
            kind = reply_budget.Kind.PURCHASE
        elif a.work.sender is None:
            kind = reply_budget.Kind.UNREGISTERED
        elif reply_budget.looks_like_reply(text):
            kind = reply_budget.Kind.REPLY_LIKE
        else:
            kind = reply_budget.Kind.ANSWER
        asks.append(reply_budget.Ask(a.work.message.id, peer, kind))
    return asks


def _silenced(a: _Answered, why: reply_budget.Silence) -> _Answered:
    """Processed, not answered: the state history says why (no SMS, no incident)."""
    log.info("SMS %s from %s not answered: %s", a.work.message.id, a.work.message.peer_msisdn, why)
    return replace(a, answer=Answer("", f"not answered: {why.value}", a.answer.meter_number))


async def _still_received(conn: AsyncConnection, ids: list[str]) -> set[str]:
    m = schema.messages
    found: set[str] = set()
    for start_at in range(0, len(ids), 500):
        rows = await conn.scalars(
            select(m.c.id)
            .where(m.c.id.in_(sorted(ids)[start_at : start_at + 500]))
            .where(m.c.state == MessageState.RECEIVED.value)
            .order_by(m.c.id)
            .with_for_update()
        )
        found.update(str(r) for r in rows)
    return found


async def _mark_processed(
    conn: AsyncConnection, answered: Sequence[_Answered], now: datetime
) -> None:
    m = schema.messages
    await conn.execute(
        update(m)
        .where(m.c.id == bindparam("b_id"), m.c.state == MessageState.RECEIVED.value)
        .values(
            state=MessageState.PROCESSED.value,
            state_at=bindparam("b_at"),
            kind=bindparam("b_kind"),
            meter_number=bindparam("b_meter"),
        ),
        [
            {
                "b_id": a.work.message.id,
                "b_at": now,
                "b_kind": a.keyword[:32],
                "b_meter": a.answer.meter_number,
            }
            for a in answered
        ],
    )
    await insert_many(
        conn,
        schema.message_states,
        [
            {
                "message_id": a.work.message.id,
                "state": MessageState.PROCESSED.value,
                "at": now,
                "detail": a.answer.kind,
            }
            for a in answered
        ],
    )


async def _record_purchases(
    ctx: HubContext,
    conn: AsyncConnection,
    todo: list[_Answered],
    purchases: list[_Answered],
    now: datetime,
    started: list[str | Transaction],
) -> list[_Answered]:
    """The transactions of accepted BELIs, keyed by their SMS (a second copy of an SMS
    finds the first one's), and the answers that name them."""
    recorded = await create_transactions(
        conn,
        [
            NewPurchase(
                idempotency_key=a.work.message.idempotency_key,
                meter_number=a.answer.purchase.meter_number,
                customer_id=a.answer.purchase.customer_id,
                amount_idr=a.answer.purchase.amount_idr,
                phone_msisdn=a.answer.purchase.phone,
                request_message_id=a.work.message.id,
            )
            for a in purchases
            if a.answer.purchase is not None
        ],
        at=now,
    )
    named: dict[str, Answer] = {}
    for a in purchases:
        purchase = a.answer.purchase
        assert purchase is not None
        tx = recorded[a.work.message.idempotency_key]
        if not tx.created and tx.request_message_id != a.work.message.id:
            text = render(Reply.PURCHASE_DUPLICATE, ctx.lang, ref=short_ref(tx.id))
            named[a.work.message.id] = Answer(text, "purchase-duplicate", purchase.meter_number)
            continue
        text = render(
            Reply.PURCHASE_ACCEPTED,
            ctx.lang,
            amount=rupiah(purchase.amount_idr),
            meter=purchase.meter_number,
            ref=short_ref(tx.id),
        )
        named[a.work.message.id] = Answer(text, "purchase-accepted", purchase.meter_number)
        # New: no journal yet, so its driver gets it in hand and reads nothing; one
        # recorded before is driven by id (its driver reads where it stands).
        started.append(tx.fresh if tx.fresh is not None else tx.id)
    return [_Answered(a.work, named.get(a.work.message.id, a.answer), a.keyword) for a in todo]


def _denominations(ctx: HubContext) -> str:
    return denominations(ctx.settings.hub.denominations_idr)


async def _pick_meter(ctx: HubContext, work: CustomerCommand, named: str | None) -> str:
    assert work.sender is not None
    return _choose_meter(ctx, await ctx.registry.meters_of(work.sender.customer_id), named)


def _choose_meter(ctx: HubContext, meters: Sequence[Meter], named: str | None) -> str:
    """The meter a command is about, or `_Refused` with the answer saying why not."""
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


def _guessing(ctx: HubContext, work: CustomerCommand, locked: PinLocked) -> Incident | None:
    """A lock-out that is one of many in a row is a guessing attack: the helpdesk is told
    (once per lock-out, from `pin.lockout_alarm_after` on)."""
    assert work.sender is not None
    if not locked.just_locked or locked.lockouts < ctx.settings.pin.lockout_alarm_after:
        return None
    return Incident(
        category="pin-lockout",
        subject=f"PIN of {work.sender.msisdn} locked out {locked.lockouts} times in a row",
        notes=(
            f"Wrong PINs again and again: locked until {wib(locked.until)} (each lock-out in a "
            "row lasts twice as long). Call the customer; if it was not them, the number may be "
            "under attack or the SIM in other hands."
        ),
        msisdn=work.sender.msisdn,
        customer_id=work.sender.customer_id,
    )


#: Why a purchase is refused when the hub has no P2APST link configured.
NO_P2APST_REASON = {
    Lang.ID: "layanan pembelian belum tersedia",
    Lang.EN: "purchases are not available",
}


async def _buy_many(
    ctx: HubContext, buys: Sequence[tuple[CustomerCommand, Buy]]
) -> dict[str, Answer]:
    """The answers to BELIs from registered phones (at most one per phone), by message:
    each check in the order a single BELI takes them (meter, denomination, PIN, P2APST
    link, duplicate), each read once for all of them. A PIN is only checked once the meter
    and the amount are right, so a typo in those costs no attempt."""
    answers: dict[str, Answer] = {}
    meters = await ctx.registry.meters_of_many(
        {work.sender.customer_id for work, _ in buys if work.sender is not None}
    )
    priced: list[tuple[CustomerCommand, Buy, str]] = []
    for work, command in buys:
        assert work.sender is not None
        try:
            meter = _choose_meter(ctx, meters.get(work.sender.customer_id, []), command.meter)
        except _Refused as refused:
            answers[work.message.id] = refused.answer
            continue
        if command.amount_rp not in ctx.settings.hub.denominations_idr:
            text = render(
                Reply.DENOMINATION,
                ctx.lang,
                amount=rupiah(command.amount_rp),
                denominations=_denominations(ctx),
            )
            answers[work.message.id] = Answer(text, "denomination", meter)
            continue
        priced.append((work, command, meter))
    verdicts = await ctx.registry.verify_pins(
        [(work.sender.msisdn, command.pin) for work, command, _ in priced if work.sender]
    )
    paid: list[tuple[CustomerCommand, Buy, str]] = []
    for (work, command, meter), verdict in zip(priced, verdicts, strict=True):
        no = _refusal(ctx, work, command, meter, verdict)
        if no is not None:
            answers[work.message.id] = no
        else:
            paid.append((work, command, meter))
    duplicates = await _duplicates(ctx, [work for work, _, _ in paid])
    for work, command, meter in paid:
        assert work.sender is not None
        duplicate = duplicates.get(work.message.id)
        if duplicate is not None:
            text = render(Reply.PURCHASE_DUPLICATE, ctx.lang, ref=short_ref(duplicate))
            answers[work.message.id] = Answer(text, "purchase-duplicate", meter)
            continue
        # The text of the acceptance names the transaction: written with it, in `_reply`.
        intent = Purchase(meter, command.amount_rp, work.sender.customer_id, work.sender.msisdn)
        answers[work.message.id] = Answer("", "purchase-accepted", meter, intent)
    return answers


def _refusal(
    ctx: HubContext,
    work: CustomerCommand,
    command: Buy,
    meter: str,
    verdict: PinResult | NotFound | RegistryError,
) -> Answer | None:
    """Why a BELI with the right meter and amount is refused (its PIN, no P2APST link)."""
    assert work.sender is not None
    if isinstance(verdict, NotFound | RegistryError):
        # E.g. a PIN hash made under a master key since rotated: the operator must see why.
        log.warning("purchase by %s refused: %s", work.sender.msisdn, verdict)
        return Answer(render(Reply.NOT_REGISTERED, ctx.lang), "no-pin", meter)
    if isinstance(verdict, PinWrong):
        text = render(Reply.WRONG_PIN, ctx.lang, attempts_left=verdict.attempts_left)
        return Answer(text, "wrong-pin", meter)
    if isinstance(verdict, PinLocked):
        text = render(Reply.PIN_LOCKED, ctx.lang, until=wib(verdict.until))
        return Answer(text, "locked", meter, incident=_guessing(ctx, work, verdict))
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
    return None


async def _duplicates(ctx: HubContext, works: Sequence[CustomerCommand]) -> dict[str, str]:
    """For each BELI, an earlier purchase of the same text from the same phone within the
    duplicate window, if any (message id -> transaction id): one read for all. A read
    before the answers' write transaction: a phone's commands are answered one round at a
    time, and the same SMS twice is caught by its key there."""
    phones = sorted({work.sender.msisdn for work in works if work.sender is not None})
    if not phones:
        return {}
    window = timedelta(seconds=ctx.settings.hub.duplicate_window_s)
    since = ctx.now() - window
    txs, msgs = schema.transactions, schema.messages
    earlier: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    async with ctx.store.read() as conn:
        for start_at in range(0, len(phones), 500):
            rows = await conn.execute(
                select(txs.c.id, txs.c.phone_msisdn, msgs.c.body, msgs.c.id.label("mid"))
                .join(msgs, msgs.c.id == txs.c.request_message_id)
                .where(
                    txs.c.phone_msisdn.in_(phones[start_at : start_at + 500]),
                    txs.c.created_at >= since,
                )
                .order_by(txs.c.created_at, txs.c.id)
            )
            for r in rows:
                earlier.setdefault((r.phone_msisdn, r.body), []).append((r.mid, r.id))
    found: dict[str, str] = {}
    for work in works:
        assert work.sender is not None
        for message_id, transaction_id in earlier.get((work.sender.msisdn, work.message.body), []):
            if message_id != work.message.id:
                found[work.message.id] = transaction_id
                break
    return found
