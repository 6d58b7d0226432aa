"""A gateway reports its spool backlog with its retained `online` status (an MQTT v5 user
property), and every hub worker hears it: what the hub's spool metrics are made of."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from gateway.mqtt import GatewayBridge, MqttSettings, MqttTransport, Topics
from gateway.mqtt.bridge import LocalGateway
from gateway.mqtt.topics import SpoolReport, parse_spool_property, spool_property
from gateway.spool import OutboundState, Spool
from gateway.spooled import SpooledGateway
from gateway.transport import InboundSms, OutboundSms, SendResult, SendStatus
from tests.gateway.loopback import LoopbackCarrier

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
METER = "+6281100000001"


async def test_the_backlog_counts_what_waits_and_not_what_is_final(tmp_path: Path) -> None:
    async with Spool(tmp_path / "spool.db") as spool:
        assert await spool.backlog() == {
            "outbound_queued": 0,
            "outbound_sending": 0,
            "events_unacked": 0,
        }
        for n in range(3):
            assert await spool.accept(OutboundSms(f"m-{n}", METER, data=b"\x01"), NOW)
        await spool.mark("m-1", OutboundState.SENDING, NOW)
        await spool.mark("m-2", OutboundState.SENT, NOW)  # final: kept until purge, not waiting
        await spool.record_event(InboundSms("in-1", METER, NOW, data=b"\x02"), NOW)
        await spool.record_event(InboundSms("in-2", METER, NOW, data=b"\x02"), NOW)
        await spool.ack("in-1")
        assert await spool.backlog() == {
            "outbound_queued": 1,
            "outbound_sending": 1,
            "events_unacked": 1,
        }


def test_a_spool_report_round_trips_and_junk_is_refused() -> None:
    report = SpoolReport({"outbound_queued": 4, "events_unacked": 0}, NOW)
    assert parse_spool_property(spool_property(report)) == report
    for junk in (
        "not json",
        "[]",
        '{"v": 2, "rows": {}, "at": "2026-11-21T08:00:00+00:00"}',
        '{"v": 1, "rows": {"outbound_queued": -1}, "at": "2026-11-21T08:00:00+00:00"}',
        '{"v": 1, "rows": {"outbound_queued": "4"}, "at": "2026-11-21T08:00:00+00:00"}',
        '{"v": 1, "rows": {"outbound_queued": true}, "at": "2026-11-21T08:00:00+00:00"}',
        '{"v": 1, "rows": {}, "at": "2026-11-21T08:00:00"}',  # no time zone
        '{"v": 1, "rows": {}, "at": "yesterday"}',
        '{"v": 1, "rows": [], "at": "2026-11-21T08:00:00+00:00"}',
    ):
        assert parse_spool_property(junk) is None, junk


def test_a_bridge_refuses_a_report_interval_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="spool_report_every"):
        GatewayBridge("gw-a", cast(LocalGateway, None), MqttSettings(), spool_report_every=0)


@pytest.mark.services
@pytest.mark.timeout(20)
async def test_every_hub_worker_hears_the_spool_grow_and_shrink(
    mosquitto_url: str, tmp_path: Path
) -> None:
    settings = MqttSettings(topics=Topics(root=f"pintar-test-{uuid.uuid4().hex[:10]}/v1"))
    carrier = LoopbackCarrier(report_sends=False)
    before = datetime.now(UTC)
    async with AsyncExitStack() as stack:
        worker_a = await stack.enter_async_context(MqttTransport(settings, worker="a"))
        # In a group of its own, so that worker_a alone takes (and acks) every event.
        worker_b = await stack.enter_async_context(
            MqttTransport(settings, group="watch", worker="b")
        )
        spool = await stack.enter_async_context(Spool(tmp_path / "gw-a.db"))
        gateway = await stack.enter_async_context(SpooledGateway("gw-a", carrier, spool))
        bridge = GatewayBridge("gw-a", gateway, settings, spool_report_every=0.05)
        await stack.enter_async_context(bridge)
        # An SMS the carrier never reports on, and an inbound SMS no worker acknowledges yet.
        assert await gateway.send(OutboundSms("out-1", METER, data=b"\x01"))
        carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x02", modem="m1"))
        waiting = {"outbound_queued": 0, "outbound_sending": 1, "events_unacked": 1}
        for worker in (worker_a, worker_b):  # the status topic is not shared: both hear it
            report = await worker.wait_for_spool_report("gw-a", lambda r: r.rows == waiting)
            assert before - timedelta(seconds=1) <= report.at <= datetime.now(UTC)
        # The send result settles the SMS; worker_a's acks empty the events.
        events = worker_a.events()
        carrier.inject(SendResult("sr-1", "out-1", SendStatus.SENT, NOW, (1,), METER, modem="m1"))
        taken = {event.event_id for event in [await anext(events), await anext(events)]}
        assert taken == {"in-1", "sr-1"}
        for event_id in sorted(taken):
            await worker_a.ack(event_id)
        done = {"outbound_queued": 0, "outbound_sending": 0, "events_unacked": 0}
        await worker_b.wait_for_spool_report("gw-a", lambda r: r.rows == done)
        assert worker_a.spool_reports.keys() == {"gw-a"}
