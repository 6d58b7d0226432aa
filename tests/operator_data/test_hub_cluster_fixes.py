"""What several hub workers on one database need beyond one worker: a restarted worker
frees the outbox rows its killed former process held, a batch being sent keeps its lease,
a customer SMS handled by two workers at once is answered once, and a purchase is driven
or resumed by one worker at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.transport import InboundSms, OutboundSms
from operator_data.crypto.master_key import MasterKey
from operator_data.hub import dispatcher
from operator_data.hub.context import HubContext
from operator_data.hub.hub import Hub
from operator_data.hub.journal import PurchaseClaims
from operator_data.hub.outbound import queue_text
from operator_data.hub.sla import SlaMonitor
from operator_data.registry import Registry
from operator_data.settings import Settings
from operator_data.store import Store, schema
from operator_data.store.outbox import claim
from p2apst_adapter.model import PurchaseRequest
from tests.operator_data.hub_support import PIN, Clock, running_rig

pytestmark = pytest.mark.timeout(60)
o = schema.outbox


@pytest.fixture
async def ctx(store: Store, master_key: MasterKey, clock: Clock) -> AsyncIterator[HubContext]:
    settings = Settings(service={"short_code": "87000"})  # type: ignore[arg-type]
    registry = Registry(store, master_key=master_key, pin_policy=settings.pin)
    yield HubContext(
        settings=settings,
        store=store,
        registry=registry,
        master=registry.require_master_key(),
        clock=clock,
        sla=SlaMonitor(settings.sla),
        p2apst=None,
    )


async def _queue(ctx: HubContext, n: int) -> None:
    async with ctx.unit() as (conn, _):
        for i in range(n):
            await queue_text(
                ctx, conn, idempotency_key=f"t:{i}", to="+6281234567890", text=f"hi {i}", kind="t"
            )


async def _owners(store: Store) -> dict[int, str | None]:
    async with store.read() as conn:
        return {r.id: r.claimed_by for r in await conn.execute(select(o.c.id, o.c.claimed_by))}


# -- the outbox lease -------------------------------------------------------------------


async def test_a_restarted_worker_frees_what_its_killed_process_held_and_nothing_else(
    ctx: HubContext,
) -> None:
    await _queue(ctx, 5)
    async with ctx.store.begin() as conn:
        # hub-0's previous process (another incarnation), one row from before incarnations,
        # another worker's claim, and one this process holds itself.
        await claim(conn, "hub-0@0dead0", limit=2, now=ctx.now())
        await claim(conn, "hub-0", limit=1, now=ctx.now())
        await claim(conn, "hub-1@beef", limit=1, now=ctx.now())
        await claim(conn, dispatcher.claimant("hub-0"), limit=1, now=ctx.now())
    assert await dispatcher.release_previous_claims(ctx.store, "hub-0") == 3
    owners = sorted(str(v) for v in (await _owners(ctx.store)).values() if v is not None)
    assert owners == sorted(["hub-1@beef", dispatcher.claimant("hub-0")])
    # The freed rows are due again at once: no lease to wait for.
    async with ctx.store.begin() as conn:
        assert len(await claim(conn, "hub-2@1", limit=10, now=ctx.now())) == 3


# Row locks: on SQLite writers take turns on the whole database.
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_freeing_a_dead_selfs_claims_passes_over_rows_another_worker_has_locked(
    ctx: HubContext,
) -> None:
    await _queue(ctx, 3)
    async with ctx.store.begin() as conn:
        held = await claim(conn, "hub-0@0dead0", limit=3, now=ctx.now())
    # Another worker is settling one of them (its transaction holds the row's lock) and
    # may next wait for a row this release locks: waiting for it could deadlock.
    async with ctx.store.begin() as other:
        await other.execute(select(o.c.id).where(o.c.id == held[0].id).with_for_update())
        async with asyncio.timeout(10):
            assert await dispatcher.release_previous_claims(ctx.store, "hub-0") == 2
    owners = await _owners(ctx.store)
    assert owners[held[0].id] == "hub-0@0dead0"  # left to its lease
    assert [owners[item.id] for item in held[1:]] == [None, None]


async def test_a_worker_id_with_like_wildcards_frees_only_its_own(ctx: HubContext) -> None:
    await _queue(ctx, 2)
    async with ctx.store.begin() as conn:
        await claim(conn, "hubX0@1", limit=1, now=ctx.now())
        await claim(conn, "hub_0@1", limit=1, now=ctx.now())
    assert await dispatcher.release_previous_claims(ctx.store, "hub_0") == 1
    assert sorted(str(v) for v in (await _owners(ctx.store)).values() if v) == ["hubX0@1"]


class HeldTransport:
    """A transport whose `send` waits until the test lets it go (a slow gateway link)."""

    def __init__(self) -> None:
        self.sending = asyncio.Event()
        self.go = asyncio.Event()
        self.sent: list[OutboundSms] = []

    async def send(self, sms: OutboundSms) -> bool:
        self.sending.set()
        await self.go.wait()
        self.sent.append(sms)
        return True

    def events(self) -> AsyncIterator[object]:
        raise NotImplementedError

    async def ack(self, event_id: str) -> None:
        return None


async def test_the_lease_is_renewed_while_a_slow_batch_is_still_being_sent(
    ctx: HubContext, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatcher, "RENEW_EVERY", timedelta(seconds=0.05))
    await _queue(ctx, 1)
    transport = HeldTransport()
    sending = asyncio.create_task(
        dispatcher.dispatch_once(ctx, transport, "hub-0")  # type: ignore[arg-type]
    )
    async with asyncio.timeout(10):
        await transport.sending.wait()
    async with ctx.store.read() as conn:
        first = await conn.scalar(select(o.c.lease_until))
    assert first is not None
    # Time passes beyond the first lease while the send is still under way...
    clock.advance(dispatcher.LEASE + timedelta(seconds=1))

    async def renewed() -> bool:
        async with ctx.store.read() as conn:
            lease = await conn.scalar(select(o.c.lease_until))
        return lease is not None and lease > clock()

    async with asyncio.timeout(10):
        while not await renewed():  # noqa: ASYNC110 (the renewal is in the database)
            await asyncio.sleep(0.02)
    # ...so another worker cannot take the row meanwhile.
    async with ctx.store.begin() as conn:
        assert await claim(conn, "hub-1@1", now=clock()) == []
    transport.go.set()
    assert await sending == 1
    assert len(transport.sent) == 1
    # Handed over: unclaimed, kept until its send result settles it.
    assert list((await _owners(ctx.store)).values()) == [None]


class RoutedTransport:
    """A transport over several gateways (as the MQTT bus): new messages go to `fresh`."""

    def __init__(self, store: Store, fresh: str) -> None:
        self.store = store
        self.fresh = fresh
        self.pinned: dict[str, str] = {}
        self.sent: list[tuple[str, str, str | None]] = []  # message, gateway, hint on disk

    def route_for(self, message_id: str) -> str | None:
        return self.pinned.get(message_id, self.fresh)

    def pin(self, message_id: str, gateway: str) -> None:
        self.pinned[message_id] = gateway

    async def send(self, sms: OutboundSms) -> bool:
        async with self.store.read() as conn:
            hint = await conn.scalar(select(o.c.gateway_hint))
        self.sent.append((sms.message_id, self.route_for(sms.message_id) or "", hint))
        return True

    def events(self) -> AsyncIterator[object]:
        raise NotImplementedError

    async def ack(self, event_id: str) -> None:
        return None


async def test_a_message_offered_again_goes_to_the_gateway_written_down_before_it_was_sent(
    ctx: HubContext, clock: Clock
) -> None:
    await _queue(ctx, 1)
    first = RoutedTransport(ctx.store, fresh="gw-a")
    assert await dispatcher.dispatch_once(ctx, first, "hub-0") == 1  # type: ignore[arg-type]
    [(message_id, gateway, hint)] = first.sent
    assert gateway == hint == "gw-a"  # on disk before the send
    # No send result: another worker (no memory of it; new messages would go to gw-b)
    # offers it again, to gw-a.
    clock.advance(timedelta(seconds=ctx.settings.hub.send_result_timeout_s + 1))
    second = RoutedTransport(ctx.store, fresh="gw-b")
    assert await dispatcher.dispatch_once(ctx, second, "hub-1") == 1  # type: ignore[arg-type]
    assert second.sent == [(message_id, "gw-a", "gw-a")]


# -- a customer SMS handled by two workers at once ---------------------------------------


async def test_an_sms_handled_by_two_workers_at_once_is_answered_once_without_errors(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The gateway re-sends an unacknowledged event, and the broker may give it to the
    other worker while the first is still answering: both then handle the same SMS."""
    caplog.set_level(logging.ERROR)
    async with running_rig(store, tmp_path) as rig:
        # A second worker on the same database (not entered: only what the event drives).
        other = Hub(
            rig.settings,
            store,
            rig.registry,
            rig.hub.transport,
            rig.client,
            clock=rig.clock,
            worker_id="hub-b",
            run_sweeper=False,
        )
        # It runs no dispatcher of its own: what it queues wakes the first worker's (a
        # worker's commits wake only its own dispatcher).
        other.ctx.wake_dispatcher = rig.hub.ctx.wake_dispatcher
        amounts = ("20rb", "50rb", "100rb")
        for n, amount in enumerate(amounts):
            event = InboundSms(
                event_id=f"gw1:twice:{n}",
                sender=rig.phone.msisdn,
                received_at=datetime.now(UTC),
                text=f"BELI {amount} {PIN}",
            )
            await asyncio.gather(rig.hub.process_events([event]), other.process_events([event]))

        async def settled() -> bool:
            receipts = [t for t in rig.phone.inbox if t.startswith("Token Rp")]
            return len(receipts) >= len(amounts) and not other.ctx.tasks

        await rig.until(settled, 40)
        await rig.hub.dispatch()
        accepted = [t for t in rig.phone.inbox if t.startswith("Pembelian Rp")]
        assert len(accepted) == len(amounts), rig.phone.inbox
        assert not [t for t in rig.phone.inbox if t.startswith("Pembelian ini sudah")]
        assert await rig.count(schema.transactions) == len(amounts)
        assert rig.simulator is not None and rig.simulator.received("2200") == len(amounts)
        replies = await rig.rows(schema.messages, schema.messages.c.in_reply_to.is_not(None))
        assert len(replies) == len(amounts)
        assert [r for r in caplog.records if "IllegalTransition" in (r.exc_text or "")] == []
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- purchases claimed by one worker ------------------------------------------------------


def _request(key: str) -> PurchaseRequest:
    return PurchaseRequest(
        switcher_reference=key, meter_number="14000000001", amount=Decimal(20000)
    )


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_purchase_claim_is_one_workers_until_released_or_its_worker_dies(
    store: Store,
) -> None:
    async with PurchaseClaims(store) as a, PurchaseClaims(store) as b:
        assert await a.claim("P1")
        assert await a.claim("P1")  # again in the same worker (driver and resumption)
        assert not await b.claim("P1")
        await a.release("P1")
        assert not await b.claim("P1")  # still held once
        await a.release("P1")
        assert await b.claim("P1")
        assert await a.claim("P2")
    # a's connection closed (as when its process dies): its claims went with it.
    async with PurchaseClaims(store) as c:
        assert await c.claim("P2")


async def test_on_sqlite_every_claim_is_granted(tmp_path: Path) -> None:
    async with (
        Store(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}") as store,
        PurchaseClaims(store) as a,
        PurchaseClaims(store) as b,
    ):
        assert await a.claim("K") and await b.claim("K")
