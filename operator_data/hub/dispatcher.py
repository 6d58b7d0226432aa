"""The outbox dispatcher: claims due outbox rows, hands them to the transport, and gives
back (for a later retry) whatever the transport would not take.

Rows are claimed under this process's claimant id, "<worker>@<incarnation>", with a short
lease that is renewed while the batch is still being sent. A worker that dies leaves its
rows to the others after at most one lease; one restarted under the same worker id frees
them at once (`release_previous_claims`), since two live processes never share a worker id
(it is also their MQTT client id, and the broker keeps only one connection per id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select

from gateway.transport import Routing, Transport
from operator_data.hub.context import HubContext
from operator_data.hub.outbound import outbound_sms
from operator_data.store import Flow, MessageState, Store, schema
from operator_data.store.messages import set_message_state
from operator_data.store.outbox import (
    OutboxItem,
    claim,
    complete_many,
    hand_over,
    release,
    release_abandoned,
    renew,
    route,
)
from operator_data.store.transitions import MESSAGES, transition_many

log = logging.getLogger("operator_data.hub.dispatcher")

LEASE = timedelta(seconds=20)
#: Renewed well before it runs out, so a slow batch is never re-claimed under it.
RENEW_EVERY = LEASE / 4
RETRY_AFTER = timedelta(seconds=5)

#: This process's incarnation: a restarted worker tells its old claims from its own.
INCARNATION = secrets.token_hex(4)


def claimant(worker: str) -> str:
    """The outbox's claimed_by for `worker` in this process (fits the 64-char column)."""
    return f"{worker[:50]}@{INCARNATION}"


async def release_previous_claims(store: Store, worker: str) -> int:
    """Free the outbox rows a former process of `worker` (killed, crashed) still holds;
    call once when the worker starts. Returns how many rows were freed."""
    async with store.begin() as conn:
        freed = await release_abandoned(
            conn, prefix=f"{worker[:50]}@", keep=claimant(worker), also=[worker]
        )
    if freed:
        log.info("worker %s: freed %d outbox row(s) its previous process held", worker, freed)
    return freed


async def dispatch_once(
    ctx: HubContext, transport: Transport, worker: str, *, limit: int = 100
) -> int:
    """One claim-send-settle round; returns how many rows were claimed."""
    async with ctx.guard():
        return await _dispatch_once(ctx, transport, worker, limit)


async def _dispatch_once(ctx: HubContext, transport: Transport, worker: str, limit: int) -> int:
    worker = claimant(worker)
    now = ctx.now()
    async with ctx.store.begin() as conn:
        items = await claim(conn, worker, limit=limit, lease=LEASE, now=now)
        claimed = len(items)
        if not items:
            return 0
        msgs = schema.messages
        rows = await conn.execute(
            select(msgs.c.id, msgs.c.flow, msgs.c.idempotency_key, msgs.c.state).where(
                msgs.c.id.in_([item.message_id for item in items])
            )
        )
        meta = {r.id: (Flow(r.flow), str(r.idempotency_key), MessageState(r.state)) for r in rows}
        pending: list[OutboxItem] = []
        settled: list[int] = []
        for item in items:
            current = meta[item.message_id][2]
            if current not in (MessageState.QUEUED, MessageState.SUBMITTED):
                settled.append(item.id)  # settled meanwhile: nothing to send
                continue
            if current is MessageState.SUBMITTED and item.attempts > 1:
                log.warning(
                    "no send result for %s after %d attempt(s): offering it again",
                    item.message_id,
                    item.attempts - 1,
                )
            pending.append(item)
        # Set-wise: one UPDATE and one history INSERT for the whole claim (the rows are
        # claimed by this worker, so none can move between the read above and this).
        queued = [i.message_id for i in pending if meta[i.message_id][2] is MessageState.QUEUED]
        await transition_many(conn, MESSAGES, queued, MessageState.SUBMITTED, at=now)
        await complete_many(conn, settled, worker)
        items = pending
        if isinstance(transport, Routing):
            # The gateway is chosen and written down before anything is sent: a re-offer,
            # by any worker after any crash, goes to the one that may hold the message.
            chosen: dict[str, list[int]] = {}  # new rows per gateway: one UPDATE each
            for item in items:
                gateway = item.gateway_hint or transport.route_for(item.message_id)
                if gateway is None:
                    continue  # no gateway online: the send is refused and retried
                if item.gateway_hint is None:
                    chosen.setdefault(gateway, []).append(item.id)
                transport.pin(item.message_id, gateway)
            for gateway, ids in chosen.items():
                await route(conn, ids, worker, gateway)
    unsettled = [item.id for item in items]

    async def send(item: OutboxItem) -> bool:
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
            return await transport.send(sms)
        except Exception:
            log.exception("transport refused %s", item.message_id)
            return False
        finally:
            unsettled.remove(item.id)

    renewing = asyncio.create_task(_keep_leased(ctx, unsettled, worker))
    try:
        # All at once (started in priority order): a transport that group-commits its
        # spool then takes the whole claim in a few transactions instead of one per SMS.
        accepted = await asyncio.gather(*(send(item) for item in items))
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
    taken = [item for item, ok in zip(items, accepted, strict=True) if ok]
    refused = [item for item, ok in zip(items, accepted, strict=True) if not ok]
    check_at = ctx.now() + timedelta(seconds=ctx.settings.hub.send_result_timeout_s)
    async with ctx.store.begin() as conn:
        by_gateway: dict[str | None, list[int]] = {}
        for item in taken:
            # A fail-over (the first gateway away too long) changed it: the next re-offer
            # goes to the gateway that has the message now.
            gateway = (
                transport.route_for(item.message_id) if isinstance(transport, Routing) else None
            )
            by_gateway.setdefault(gateway, []).append(item.id)
        for gateway, ids in by_gateway.items():
            await hand_over(conn, ids, worker, check_at=check_at, gateway=gateway)
        for item in refused:
            if await release(conn, item.id, worker, retry_at=ctx.now() + RETRY_AFTER):
                state = await conn.scalar(
                    select(schema.messages.c.state).where(schema.messages.c.id == item.message_id)
                )
                if state == MessageState.SUBMITTED.value:
                    await set_message_state(
                        conn, item.message_id, MessageState.QUEUED, at=ctx.now(), detail="retry"
                    )
    return claimed


async def _keep_leased(ctx: HubContext, unsettled: Sequence[int], worker: str) -> None:
    """Renew the lease on the rows not yet handed over, until cancelled. `unsettled` is
    the sender's own list: it shrinks as the batch goes out."""
    while True:
        await asyncio.sleep(RENEW_EVERY.total_seconds())
        if not unsettled:
            continue
        try:
            async with ctx.store.begin() as conn:
                await renew(conn, list(unsettled), worker, until=ctx.now() + LEASE)
        except Exception:
            # A missed renewal only risks a re-send, which the message id deduplicates.
            log.exception("renewing the outbox lease of %s failed", worker)
