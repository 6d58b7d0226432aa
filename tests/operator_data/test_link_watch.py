"""A P2APST link down past `p2apst.link_down_alarm_s` opens one helpdesk incident per
outage, from every worker's sweep (each watches its own link)."""

from __future__ import annotations

import dataclasses
import socket

from sqlalchemy import select

from operator_data.hub.context import HubContext
from operator_data.hub.journal import HubPurchaseJournal
from operator_data.hub.link_watch import LINK_DOWN, LinkWatch
from operator_data.store import Store, schema
from p2apst_adapter.client import P2apstClient
from p2apst_adapter.simulator import P2apstSimulator, demo_meters
from tests.operator_data.test_status_batch import _context
from tests.p2apst_adapter.test_link import FAST


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _incidents(store: Store) -> list[str]:
    items = schema.helpdesk_items
    async with store.read() as conn:
        rows = await conn.execute(select(items.c.subject).where(items.c.category == LINK_DOWN))
        return [str(r.subject) for r in rows]


async def test_a_link_down_too_long_opens_one_incident_per_outage(store: Store) -> None:
    ctx = await _context(store)
    settings = ctx.settings.model_copy(
        update={"p2apst": ctx.settings.p2apst.model_copy(update={"link_down_alarm_s": 0.0})}
    )
    journal = _journal(ctx)
    async with P2apstClient("127.0.0.1", _closed_port(), journal=journal, settings=FAST) as down:
        watch = LinkWatch(dataclasses.replace(ctx, settings=settings, p2apst=down), "hub-a")
        assert await watch.check()
        assert not await watch.check()  # the same outage: reported once
    assert len(subjects := await _incidents(store)) == 1
    assert "P2APST link down" in subjects[0] and "hub-a" in subjects[0]


async def test_an_up_link_or_a_short_outage_opens_nothing(store: Store) -> None:
    ctx = await _context(store)
    journal = _journal(ctx)
    async with (
        P2apstSimulator(demo_meters(1)) as simulator,
        P2apstClient("127.0.0.1", simulator.port, journal=journal, settings=FAST) as up,
        P2apstClient("127.0.0.1", _closed_port(), journal=journal, settings=FAST) as down,
    ):
        await up.wait_connected()
        assert not await LinkWatch(dataclasses.replace(ctx, p2apst=up), "hub-a").check()
        # Down, but for less than the default 120 s.
        assert not await LinkWatch(dataclasses.replace(ctx, p2apst=down), "hub-b").check()
    assert await _incidents(store) == []


def _journal(ctx: HubContext) -> HubPurchaseJournal:
    return HubPurchaseJournal(ctx.store, ctx.master)
