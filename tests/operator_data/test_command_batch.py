"""Customer SMS answered set-wise (`operator_data.hub.customer.answer_commands`).

A batch of SMS from many phones (right and wrong PINs, a wrong amount, a meter that is not
theirs, a BELI sent twice, a HELP, a typo) is answered as answering them one at a time
does, with the reads and writes of one round for all of them; a phone's second SMS in the
batch is answered after its first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from operator_data.commands import mask_secrets
from operator_data.hub.customer import answer_commands
from operator_data.hub.delivery import targets
from operator_data.hub.inbound import CustomerCommand
from operator_data.registry import PinLocked, PinWrong, SenderCustomer
from operator_data.store import Flow, Store, schema
from operator_data.store.messages import record_inbound
from tests.operator_data.hub_support import CUSTOMER, METER, PIN, Phone, Rig, running_rig

_CONTROL = {"BEGIN", "SAVEPOINT", "RELEASE", "COMMIT", "ROLLBACK"}
PHONES = [f"+628129{n:07d}" for n in range(1, 41)]


async def _phones(rig: Rig) -> None:
    for phone in PHONES:
        await rig.registry.register_phone(phone, CUSTOMER)
        await rig.registry.set_pin(phone, PIN, actor="test")


async def _logged(rig: Rig, texts: list[tuple[str, str]], tag: str) -> list[CustomerCommand]:
    works = []
    async with rig.store.begin() as conn:
        for n, (phone, text) in enumerate(texts):
            message, _ = await record_inbound(
                conn,
                flow=Flow.CUSTOMER_TO_HUB,
                idempotency_key=f"sms:{tag}:{n}",
                peer_msisdn=phone,
                customer_id=CUSTOMER,
                body=mask_secrets(text),
                at=rig.clock(),
            )
            sender = SenderCustomer(CUSTOMER, phone)
            works.append(CustomerCommand(message, text, sender, f"{tag}:{n}"))
    return works


def _mixed(phones: list[str]) -> list[tuple[str, str]]:
    """Every kind of answer, one SMS per phone."""
    kinds = [
        f"BELI 20rb {PIN}",
        "BELI 20rb 999999",  # wrong PIN
        f"BELI 12345 {PIN}",  # not a denomination
        f"BELI 20rb 99999999999 {PIN}",  # not their meter
        "BANTUAN",
        "BLEI 20rb",
    ]
    return [(phone, kinds[n % len(kinds)]) for n, phone in enumerate(phones)]


async def _replies(store: Store, tag_ids: set[str]) -> list[tuple[str, str, str]]:
    m = schema.messages
    async with store.read() as conn:
        rows = await conn.execute(
            select(m.c.in_reply_to, m.c.kind, m.c.body).where(m.c.in_reply_to.in_(tag_ids))
        )
        return [(r.in_reply_to, r.kind, r.body) for r in rows]


def _shape(replies: list[tuple[str, str, str]], works: list[CustomerCommand]) -> list[Any]:
    """The replies in the works' order, with the transaction references taken out (each
    purchase has its own)."""
    by_message = {reply: (kind, body) for reply, kind, body in replies}
    shaped = []
    for work in works:
        kind, body = by_message[work.message.id]
        shaped.append((work.message.peer_msisdn, kind, body.split(" Ref")[0].split("ref")[0]))
    return shaped


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    """The data statements the calling task runs (the rig's hub runs its own meanwhile;
    whether a unit begins a transaction or joins one as a savepoint depends on who else is
    writing at that moment, so transaction control is not counted)."""
    seen: list[str] = []
    me = asyncio.current_task()

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.split(None, 1)[0].upper()
        if asyncio.current_task() is me and verb not in _CONTROL:
            seen.append(verb)

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def test_a_batch_answers_as_one_at_a_time_does(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path) as rig:
        await _phones(rig)
        half = len(PHONES) // 2
        started: list[str] = []
        batch = await _logged(rig, _mixed(PHONES[:half]), "batch")
        await answer_commands(rig.hub.ctx, batch, started.append)
        alone = await _logged(rig, _mixed(PHONES[half:]), "alone")
        for work in alone:
            await answer_commands(rig.hub.ctx, [work], started.append)
        batched = _shape(await _replies(store, {w.message.id for w in batch}), batch)
        single = _shape(await _replies(store, {w.message.id for w in alone}), alone)
        # Same answers, phone for phone (the phones differ, the texts must not).
        assert [row[1:] for row in batched] == [row[1:] for row in single]
        kinds = [row[1] for row in batched + single]
        assert {"purchase-accepted", "wrong-pin", "denomination", "not-your-meter"} <= set(kinds)
        assert {"help"} <= set(kinds)
        assert len(started) == kinds.count("purchase-accepted") == len(set(started))
        m, ledger = schema.messages, schema.cost_ledger
        ids = [w.message.id for w in batch + alone]
        async with store.read() as conn:
            states = list(await conn.scalars(select(m.c.state).where(m.c.id.in_(ids))))
            charged = list(
                await conn.scalars(select(ledger.c.message_id).where(ledger.c.message_id.in_(ids)))
            )
        assert states == ["processed"] * len(ids)
        assert sorted(charged) == sorted(ids)  # each SMS charged once, at its flow's price
        # A wrong PIN in the batch counted an attempt, as alone: one more wrong guess
        # leaves both phones with as many attempts.
        left = await rig.registry.verify_pins([(PHONES[1], "999999"), (PHONES[half + 1], "999999")])
        assert left[0] == left[1]
        assert isinstance(left[0], PinWrong | PinLocked)


async def test_a_phone_twice_in_one_batch_buys_once(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path) as rig:
        await _phones(rig)
        phone = PHONES[0]
        works = await _logged(
            rig,
            [(phone, f"BELI 20rb {PIN}"), (PHONES[1], "BANTUAN"), (phone, f"BELI 20rb {PIN}")],
            "twice",
        )
        started: list[str] = []
        await answer_commands(rig.hub.ctx, works, started.append)
        replies = dict(
            (reply, kind) for reply, kind, _ in await _replies(store, {w.message.id for w in works})
        )
        assert replies[works[0].message.id] == "purchase-accepted"
        assert replies[works[2].message.id] == "purchase-duplicate"
        assert len(started) == 1
        # Answered again (a redelivery): nothing new.
        await answer_commands(rig.hub.ctx, works, started.append)
        assert len(started) == 1
        assert len(await _replies(store, {w.message.id for w in works})) == 3


async def test_a_round_costs_the_same_statements_for_4_phones_as_for_36(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        await _phones(rig)
        counts = []
        for tag, phones in (("few", PHONES[:4]), ("many", PHONES[4:])):
            works = await _logged(rig, [(p, f"BELI 20rb {PIN}") for p in phones], tag)
            with _statements(store) as seen:
                await answer_commands(rig.hub.ctx, works, lambda _: None)
            counts.append(len(seen))
        assert counts[0] == counts[1], counts
        assert counts[1] < 36  # one statement per SMS would already be more


async def test_forty_purchases_at_once_all_complete(store: Store, tmp_path: Path) -> None:
    """More purchases in flight than the store has pooled connections: each is paid,
    delivered, applied and reported. (The paid step once held a read connection while the
    registry opened a second one for the meter's key: with 15 such steps at once every
    pooled connection was held by one waiting for another, and purchases stalled.)"""
    async with running_rig(store, tmp_path) as rig:
        await _phones(rig)
        phones = [Phone(rig.network, msisdn) for msisdn in PHONES]
        for phone in phones:
            phone.text(f"BELI 20rb {PIN}")
        t = schema.transactions

        async def all_reported() -> bool:
            async with store.read() as conn:
                states = list(await conn.scalars(select(t.c.state)))
            return states == ["reported"] * len(PHONES)

        await rig.until(all_reported, 60)
        assert all(any(m.startswith("Token Rp20.000") for m in p.inbox) for p in phones)
        assert rig.simulator is not None and rig.simulator.received("2200") == len(PHONES)


async def test_the_paid_steps_read_holds_one_connection_at_a_time(
    store: Store, tmp_path: Path
) -> None:
    """What stalled them, pinned down: a task holding a pooled connection while it waits
    for a second one (run concurrently, such tasks exhaust the pool)."""
    async with running_rig(store, tmp_path) as rig:
        held: dict[int, int] = {}  # task -> connections it holds
        owner: dict[int, int] = {}  # connection -> the task that checked it out
        most = 0

        def checkout(dbapi_connection: Any, *_: Any) -> None:
            nonlocal most
            task = id(asyncio.current_task())
            owner[id(dbapi_connection)] = task
            held[task] = held.get(task, 0) + 1
            most = max(most, held[task])

        def checkin(dbapi_connection: Any, *_: Any) -> None:
            # Returned from wherever the pool runs it: counted against the task that took it.
            task = owner.pop(id(dbapi_connection), None)
            if task is not None:
                held[task] -= 1

        pool = store.engine.sync_engine.pool
        event.listen(pool, "checkout", checkout)
        event.listen(pool, "checkin", checkin)
        try:
            found = await targets(rig.hub.ctx, [METER])
        finally:
            event.remove(pool, "checkout", checkout)
            event.remove(pool, "checkin", checkin)
        assert not isinstance(found[METER], str)
        assert most == 1
