"""The outbox dispatcher: claims due outbox rows, hands them to the transport, and gives
back (for a later retry) whatever the transport would not take."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from gateway.transport import Transport
from operator_data.hub.context import HubContext
from operator_data.hub.outbound import outbound_sms
from operator_data.store import Flow, MessageState, schema
from operator_data.store.messages import set_message_state
from operator_data.store.outbox import OutboxItem, claim, complete, release

log = logging.getLogger("operator_data.hub.dispatcher")

LEASE = timedelta(seconds=60)
RETRY_AFTER = timedelta(seconds=5)


async def dispatch_once(
    ctx: HubContext, transport: Transport, worker: str, *, limit: int = 100
) -> int:
    """One claim-send-settle round; returns how many rows were claimed."""
    async with ctx.guard():
        return await _dispatch_once(ctx, transport, worker, limit)


async def _dispatch_once(ctx: HubContext, transport: Transport, worker: str, limit: int) -> int:
    now = ctx.now()
    async with ctx.store.begin() as conn:
        items = await claim(conn, worker, limit=limit, lease=LEASE, now=now)
        if not items:
            return 0
        msgs = schema.messages
        rows = await conn.execute(
            select(msgs.c.id, msgs.c.flow, msgs.c.idempotency_key, msgs.c.state).where(
                msgs.c.id.in_([item.message_id for item in items])
            )
        )
        meta = {r.id: (Flow(r.flow), str(r.idempotency_key), MessageState(r.state)) for r in rows}
        for item in items:
            if meta[item.message_id][2] is MessageState.QUEUED:
                await set_message_state(conn, item.message_id, MessageState.SUBMITTED, at=now)
    taken: list[OutboxItem] = []
    refused: list[OutboxItem] = []
    for item in items:
        flow, key, _ = meta[item.message_id]
        sms = outbound_sms(
            ctx.master,
            message_id=item.message_id,
            idempotency_key=key,
            flow=flow,
            to=item.destination,
            payload=item.payload,
        )
        try:
            accepted = await transport.send(sms)
        except Exception:
            log.exception("transport refused %s", item.message_id)
            accepted = False
        (taken if accepted else refused).append(item)
    async with ctx.store.begin() as conn:
        for item in taken:
            await complete(conn, item.id, worker)
        for item in refused:
            if await release(conn, item.id, worker, retry_at=ctx.now() + RETRY_AFTER):
                state = await conn.scalar(
                    select(schema.messages.c.state).where(schema.messages.c.id == item.message_id)
                )
                if state == MessageState.SUBMITTED.value:
                    await set_message_state(
                        conn, item.message_id, MessageState.QUEUED, at=ctx.now(), detail="retry"
                    )
    return len(items)
