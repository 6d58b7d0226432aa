"""Transport events arriving in an unexpected order: a status report that overtakes its
send result (another worker, a re-delivery) must still move the purchase along."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from gateway.transport import OutboundSms, SendResult, Transport, TransportEvent
from operator_data.store import Store, schema
from tests.operator_data.hub_support import PIN, running_rig


class WithoutSendResults:
    """The gateway, except that its send results never reach the hub (acked unseen)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.dropped = 0

    async def send(self, sms: OutboundSms) -> bool:
        return await self.inner.send(sms)

    async def events(self) -> AsyncIterator[TransportEvent]:
        async for event in self.inner.events():
            if isinstance(event, SendResult):
                self.dropped += 1
                await self.inner.ack(event.event_id)
                continue
            yield event

    async def ack(self, event_id: str) -> None:
        await self.inner.ack(event_id)


async def test_a_status_report_before_the_send_result_marks_the_token_sent(
    store: Store, tmp_path: Path
) -> None:
    wrappers: list[WithoutSendResults] = []

    def wrap(inner: Transport) -> Transport:
        wrappers.append(WithoutSendResults(inner))
        return wrappers[0]

    async with running_rig(store, tmp_path, meter_answers=False, wrap_transport=wrap) as rig:
        rig.phone.text(f"BELI 20000 {PIN}")
        txs = schema.transactions

        async def token_sent() -> bool:
            async with store.read() as conn:
                state = await conn.scalar(select(txs.c.state))
            return state == "token_sent"

        await rig.until(token_sent)
        assert wrappers[0].dropped > 0
        msgs = schema.messages
        async with store.read() as conn:
            token_sms = (
                await conn.execute(select(msgs.c.state).where(msgs.c.kind == "TOKEN_DELIVERY"))
            ).all()
        assert [row.state for row in token_sms] == ["delivered"]


class LosingFirstSends:
    """The gateway, except that the first copy of every SMS is lost after the transport
    took it (between the broker and a gateway's spool, say): no send result ever comes."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.lost: list[str] = []

    async def send(self, sms: OutboundSms) -> bool:
        if sms.message_id not in self.lost:
            self.lost.append(sms.message_id)
            return True
        return await self.inner.send(sms)

    def events(self) -> AsyncIterator[TransportEvent]:
        return self.inner.events()

    async def ack(self, event_id: str) -> None:
        await self.inner.ack(event_id)


async def test_a_send_that_never_gets_a_result_is_offered_again(
    store: Store, tmp_path: Path
) -> None:
    wrappers: list[LosingFirstSends] = []

    def wrap(inner: Transport) -> Transport:
        wrappers.append(LosingFirstSends(inner))
        return wrappers[0]

    async with running_rig(store, tmp_path, p2apst=False, wrap_transport=wrap) as rig:
        rig.phone.text("BANTUAN")
        msgs = schema.messages

        async def reply_submitted() -> bool:
            rows = await rig.rows(msgs, msgs.c.direction == "out")
            return len(rows) == 1 and rows[0].state == "submitted"

        await rig.until(reply_submitted)
        assert len(wrappers[0].lost) == 1 and rig.phone.inbox == []
        await rig.hub.dispatch()  # not yet due: the result may still come
        assert rig.phone.inbox == []
        rig.clock.advance(timedelta(seconds=rig.settings.hub.send_result_timeout_s + 1))
        await rig.hub.dispatch()
        await rig.until(rig.inbox_has(1))
        assert "BELI" in rig.phone.inbox[0]

        async def settled() -> bool:
            (row,) = await rig.rows(msgs, msgs.c.direction == "out")
            return row.state in ("sent", "delivered") and await rig.count(schema.outbox) == 0

        await rig.until(settled)  # its send result took the outbox row away
