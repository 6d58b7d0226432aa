"""Transport events arriving in an unexpected order: a status report that overtakes its
send result (another worker, a re-delivery) must still move the purchase along."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
