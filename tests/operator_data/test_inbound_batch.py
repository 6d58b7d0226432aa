"""Customers' SMS logged set-wise (`log_customer_commands`, `record_inbound_many`): one
read and one INSERT per table for a batch, PINs masked, and re-deliveries and twins
answered as logging them one at a time would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select

from gateway.transport import InboundSms
from operator_data.hub.inbound import is_customer_command, log_customer_commands
from operator_data.registry import Identified, SenderCustomer, SenderMeter
from operator_data.store import Flow, MessageState, Store, schema
from operator_data.store.messages import Incoming, record_inbound_many, set_message_state
from operator_data.store.transitions import MESSAGES, history

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PHONE = "+6281290000001"
CUSTOMER = "C-1"


def _sms(n: int, text: str | None = "BELI 20rb 5162", sender: str = PHONE) -> InboundSms:
    return InboundSms(f"ev-{n}", sender, AT, text=text, gateway="gw1", modem="m1")


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_c: object, _cur: object, statement: str, *_: object) -> None:
        verb = statement.split(None, 1)[0].upper()
        if verb not in {"BEGIN", "SAVEPOINT", "RELEASE", "COMMIT"}:
            seen.append(verb)

    event.listen(store.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", note)


async def test_a_batch_of_commands_is_logged_in_one_statement_per_table(store: Store) -> None:
    customer = Identified(SenderCustomer(CUSTOMER, PHONE))
    items = [(_sms(n), customer) for n in range(30)]
    with _statements(store) as seen:
        async with store.begin() as conn:
            commands = await log_customer_commands(conn, items, at=AT)
    assert seen == ["SELECT", "INSERT", "INSERT"]  # known keys; messages; their stamps
    assert all(c is not None for c in commands)
    assert [c.event_id for c in commands if c is not None] == [f"ev-{n}" for n in range(30)]
    async with store.read() as conn:
        rows = (await conn.execute(select(schema.messages).order_by(schema.messages.c.id))).all()
        for c in commands:
            assert c is not None
            assert [s.state for s in await history(conn, MESSAGES, c.message.id)] == [
                MessageState.RECEIVED
            ]
    assert len(rows) == 30
    # The PIN never reaches the log; the command keeps it (in memory) to be checked.
    assert {r.body for r in rows} == {"BELI 20rb ****"}
    assert {(r.flow, r.customer_id, r.peer_msisdn, r.gateway_id) for r in rows} == {
        (Flow.CUSTOMER_TO_HUB.value, CUSTOMER, PHONE, "gw1")
    }
    assert commands[0] is not None and commands[0].text == "BELI 20rb 5162"


async def test_redeliveries_and_twins_are_logged_once(store: Store) -> None:
    customer = Identified(SenderCustomer(CUSTOMER, PHONE))
    async with store.begin() as conn:
        first = await log_customer_commands(conn, [(_sms(1), customer), (_sms(2), None)], at=AT)
        answered = first[0]
        assert answered is not None
        await set_message_state(conn, answered.message.id, MessageState.PROCESSED, at=AT)
    async with store.begin() as conn:
        again = await log_customer_commands(
            conn,
            [
                (_sms(1), customer),  # answered before: nothing to do
                (_sms(2), None),  # logged, never answered (a crash): answer it now
                (_sms(3), customer),  # new
                (_sms(3), customer),  # its twin in the same batch
            ],
            at=AT,
        )
    assert again[0] is None
    assert again[1] is not None and first[1] is not None
    assert again[1].message.id == first[1].message.id
    assert again[2] is not None and again[3] is None
    async with store.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(schema.messages)) == 3


async def test_only_answerable_senders_are_customer_commands() -> None:
    meter = Identified(SenderMeter("M-1", CUSTOMER))
    customer = Identified(SenderCustomer(CUSTOMER, PHONE))
    assert is_customer_command(_sms(1), customer)
    assert is_customer_command(_sms(2), None)  # a stranger's text: answered (registration)
    assert not is_customer_command(_sms(3), meter)
    assert not is_customer_command(_sms(4, sender="not a number"), None)
    assert not is_customer_command(_sms(5, text=None), None)  # binary from a stranger
    assert is_customer_command(_sms(6, text=None), customer)


async def test_an_outbound_flow_is_refused(store: Store) -> None:
    async with store.begin() as conn:
        with pytest.raises(ValueError, match="not an inbound flow"):
            await record_inbound_many(conn, [Incoming(Flow.HUB_TO_CUSTOMER, "k", PHONE)], at=AT)
