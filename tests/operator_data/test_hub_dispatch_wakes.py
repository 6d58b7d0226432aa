"""The dispatcher claims outbox rows only when some are due (issue 14, item 6), and a stage
is stamped with the time its event happened, not when the hub got round to it (item 8)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from firmware_protocol.frames import MeterStatus, Telemetry
from gateway.transport import OutboundSms, SendResult, SendStatus, Transport, TransportEvent
from operator_data.store import Direction, Store, TransactionState, schema
from tests.operator_data.hub_support import PIN, Rig, running_rig

CLAIM = "UPDATE outbox SET claimed_by"


@contextmanager
def claims_counted(store: Store) -> Iterator[list[str]]:
    """Every outbox claim statement the store runs while the block is open."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(CLAIM):
            seen.append(statement)

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _telemetry(rig: Rig, n: int) -> Telemetry:
    return Telemetry(
        request_id=n,
        read_at=rig.network.now().replace(microsecond=0),
        energy_kwh=Decimal("100.5") + n,
        credit_kwh=Decimal("40.0"),
        voltage_v=Decimal("220.0"),
        power_w=500,
        status=MeterStatus(0),
        signal_csq=20,
    )


async def test_work_that_queues_no_sms_never_makes_the_dispatcher_claim(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        with claims_counted(store) as claims:
            for n in range(5):
                rig.meter.send(_telemetry(rig, n))

            async def stored() -> bool:
                return await rig.count(schema.telemetry_readings) == 5

            await rig.until(stored)
            # Then an SMS that is answered: its reply is the one thing to send. By the time
            # it arrives the dispatcher has run after every commit above (had they woken it).
            rig.phone.text("BANTUAN")
            await rig.until(rig.inbox_has(1))
        assert len(claims) == 1


async def test_a_purchase_costs_at_most_one_claim_per_sms_it_sends(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        with claims_counted(store) as claims:
            rig.phone.text(f"BELI 20000 {PIN}")
            await rig.until(rig.inbox_has(2))
        msgs = schema.messages
        sent = await rig.count(msgs, msgs.c.direction == Direction.OUT.value)
        assert sent == 3  # the acceptance, the token frame, the receipt
        assert 1 <= len(claims) <= sent


class HoldingTokenSendResults:
    """The gateway, except that the send result of the token frame is held back until the
    test releases it (a hub busy elsewhere, or a slow bus)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.token_ids: set[str] = set()
        self.held: list[SendResult] = []
        self.release = asyncio.Event()

    async def send(self, sms: OutboundSms) -> bool:
        if sms.data is not None:
            self.token_ids.add(sms.message_id)
        return await self.inner.send(sms)

    async def events(self) -> AsyncIterator[TransportEvent]:
        async for item in self.inner.events():
            if isinstance(item, SendResult) and item.message_id in self.token_ids:
                self.held.append(item)
                await self.release.wait()
            yield item

    async def ack(self, event_id: str) -> None:
        await self.inner.ack(event_id)


async def test_token_sent_is_stamped_when_the_gateway_sent_it_not_when_the_hub_heard(
    store: Store, tmp_path: Path
) -> None:
    wrappers: list[HoldingTokenSendResults] = []

    def wrap(inner: Transport) -> Transport:
        wrappers.append(HoldingTokenSendResults(inner))
        return wrappers[0]

    async with running_rig(store, tmp_path, meter_answers=False, wrap_transport=wrap) as rig:
        held = wrappers[0]
        rig.phone.text(f"BELI 20000 {PIN}")

        async def result_held() -> bool:
            return bool(held.held)

        await rig.until(result_held)
        # The hub gets to the send result a minute later than it happened.
        rig.clock.advance(timedelta(seconds=60))
        held.release.set()
        txs, states = schema.transactions, schema.transaction_states

        async def token_sent() -> bool:
            async with store.read() as conn:
                return await conn.scalar(select(txs.c.state)) == "token_sent"

        await rig.until(token_sent)
        async with store.read() as conn:
            stamps = {
                row.state: row.at for row in await conn.execute(select(states.c.state, states.c.at))
            }
        (result,) = [r for r in held.held if r.status is SendStatus.SENT]
        issued = stamps[TransactionState.TOKEN_ISSUED.value]
        # The gateway's time of sending (within what the hub's clock allows), not the
        # hub's now, which would make the network look a minute late.
        assert stamps[TransactionState.TOKEN_SENT.value] == max(issued, result.at)
        assert stamps[TransactionState.TOKEN_SENT.value] < rig.clock.now
        assert not [b for b in rig.breaches if b.metric.value == "token_to_network"]


class HoldingFirstSend:
    """The gateway, except that the first send waits until the test releases it (a slow
    bus): meanwhile the hub queues more and wakes the dispatcher during its round."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.sending = asyncio.Event()
        self.release = asyncio.Event()
        self.first = True

    async def send(self, sms: OutboundSms) -> bool:
        if self.first:
            self.first = False
            self.sending.set()
            await self.release.wait()
        return await self.inner.send(sms)

    async def events(self) -> AsyncIterator[TransportEvent]:
        async for item in self.inner.events():
            yield item

    async def ack(self, event_id: str) -> None:
        await self.inner.ack(event_id)


DUE = "SELECT min(outbox.available_at)"


async def test_a_round_woken_meanwhile_goes_on_without_reading_the_next_due_time(
    store: Store, tmp_path: Path
) -> None:
    wrappers: list[HoldingFirstSend] = []

    def wrap(inner: Transport) -> Transport:
        wrappers.append(HoldingFirstSend(inner))
        return wrappers[0]

    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(CLAIM):
            seen.append("claim")
        elif statement.startswith(DUE):
            seen.append("due")

    async with running_rig(store, tmp_path, p2apst=False, wrap_transport=wrap) as rig:
        held = wrappers[0]
        rig.phone.text("BANTUAN")
        await held.sending.wait()  # the first reply's round is under way, held in send()
        rig.phone.text("BANTUAN")  # a second reply queued (and the dispatcher woken) meanwhile

        async def second_reply_queued() -> bool:
            return await rig.count(schema.outbox) == 2

        await rig.until(second_reply_queued)
        engine = store.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            held.release.set()
            await rig.until(rig.inbox_has(2))
        finally:
            event.remove(engine, "before_cursor_execute", record)
    # The round that was woken meanwhile claimed the second reply at once: no read of
    # the outbox's next due time came before that claim.
    assert "claim" in seen
    assert seen.index("claim") < (seen.index("due") if "due" in seen else len(seen))
