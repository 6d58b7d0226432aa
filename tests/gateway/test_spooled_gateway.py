"""A gateway node with its spool: nothing accepted or received is lost across restarts, and
an event left unacknowledged is delivered again on the stream that is open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.spool import OutboundState, Spool
from gateway.spooled import SpooledGateway
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    OutboundSms,
    SendResult,
    TransportEvent,
)
from tests.gateway.loopback import LoopbackCarrier

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
METER = "+6281100000001"


async def next_events(stream: AsyncIterator[TransportEvent], count: int) -> list[TransportEvent]:
    return [await anext(stream) for _ in range(count)]


async def test_a_sent_sms_is_reported_marked_and_forgotten_after_ack(tmp_path: Path) -> None:
    carrier = LoopbackCarrier()
    async with Spool(tmp_path / "s.db") as spool, SpooledGateway("gw1", carrier, spool) as gw:
        sms = OutboundSms("msg-1", METER, data=b"\x01\x02")
        assert await gw.send(sms)
        stream = gw.events()
        [result] = await next_events(stream, 1)
        assert isinstance(result, SendResult) and result.gateway == "gw1"
        assert carrier.submitted == [sms]
        state = await spool.outbound_state("msg-1")
        assert state is not None and state.state is OutboundState.SENT
        await gw.ack(result.event_id)
        assert await spool.unacknowledged() == []


async def test_a_duplicate_message_id_is_sent_once(tmp_path: Path) -> None:
    carrier = LoopbackCarrier()
    async with Spool(tmp_path / "s.db") as spool, SpooledGateway("gw1", carrier, spool) as gw:
        sms = OutboundSms("msg-1", METER, text="halo")
        assert await gw.send(sms)
        assert await gw.send(sms)
        await next_events(gw.events(), 1)
    assert len(carrier.submitted) == 1


async def test_sms_not_yet_sent_are_handed_over_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    silent = LoopbackCarrier(report_sends=False)  # the gateway dies before the modem answers
    async with Spool(path) as spool, SpooledGateway("gw1", silent, spool) as gw:
        await gw.send(OutboundSms("msg-1", METER, text="a"))
        await gw.send(OutboundSms("msg-2", METER, text="b"))
    restarted = LoopbackCarrier()
    async with Spool(path) as spool, SpooledGateway("gw1", restarted, spool) as gw:
        events = await next_events(gw.events(), 2)
    assert [sms.message_id for sms in restarted.submitted] == ["msg-1", "msg-2"]
    assert {e.message_id for e in events if isinstance(e, SendResult)} == {"msg-1", "msg-2"}


async def test_unacknowledged_events_are_replayed_once_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    carrier = LoopbackCarrier()
    async with Spool(path) as spool, SpooledGateway("gw1", carrier, spool) as gw:
        stream = gw.events()
        for n in range(3):
            carrier.inject(InboundSms(f"in-{n}", METER, NOW, data=bytes([n]), modem="m1"))
        first = await next_events(stream, 3)
        await gw.ack(first[0].event_id)
    carrier = LoopbackCarrier()
    async with Spool(path) as spool, SpooledGateway("gw1", carrier, spool) as gw:
        stream = gw.events()
        replayed = await next_events(stream, 2)
        carrier.inject(InboundSms("in-3", METER, NOW, data=b"\x03", modem="m1"))
        carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x01", modem="m1"))  # a duplicate
        carrier.inject(InboundSms("in-4", METER, NOW, data=b"\x04", modem="m1"))
        live = await next_events(stream, 2)
    assert [e.event_id for e in replayed] == ["in-1", "in-2"]
    assert [e.event_id for e in live] == ["in-3", "in-4"]


async def test_status_reports_get_the_message_id_of_the_part_they_report(tmp_path: Path) -> None:
    carrier = LoopbackCarrier()
    async with Spool(tmp_path / "s.db") as spool, SpooledGateway("gw1", carrier, spool) as gw:
        stream = gw.events()
        await gw.send(OutboundSms("msg-1", METER, text="a"))
        [sent] = await next_events(stream, 1)
        assert isinstance(sent, SendResult)
        carrier.inject(
            DeliveryReport("dr-1", None, METER, sent.message_references[0], 0, NOW, NOW, modem="m1")
        )
        carrier.inject(DeliveryReport("dr-2", None, METER, 200, 0, NOW, NOW, modem="m1"))
        matched, unmatched = await next_events(stream, 2)
    assert isinstance(matched, DeliveryReport) and matched.message_id == "msg-1"
    assert isinstance(unmatched, DeliveryReport) and unmatched.message_id is None


async def test_an_unacked_event_is_yielded_again_on_the_open_stream(tmp_path: Path) -> None:
    carrier = LoopbackCarrier()
    async with (
        Spool(tmp_path / "s.db") as spool,
        SpooledGateway("gw1", carrier, spool, redeliver_after=0.1) as gw,
    ):
        stream = gw.events()
        carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x01", modem="m1"))
        carrier.inject(InboundSms("in-2", METER, NOW, data=b"\x02", modem="m1"))
        first = await next_events(stream, 2)
        await gw.ack("in-1")
        # Only the unacked one comes back, as it was, on the stream still open.
        [again] = await next_events(stream, 1)
        assert again == first[1]
        await gw.ack("in-2")
        carrier.inject(InboundSms("in-3", METER, NOW, data=b"\x03", modem="m1"))
        [fresh] = await next_events(stream, 1)
    assert fresh.event_id == "in-3"  # neither acked event came back in between


class CountingSpool(Spool):
    """The real spool, counting how often the gateway reads its unacknowledged events."""

    reads = 0

    async def unacknowledged(self, after_seq: int = 0) -> list[tuple[int, TransportEvent]]:
        self.reads += 1
        return await super().unacknowledged(after_seq)


async def test_an_open_stream_reads_the_spool_only_when_a_redelivery_is_due(
    tmp_path: Path,
) -> None:
    carrier = LoopbackCarrier()
    async with (
        CountingSpool(tmp_path / "s.db") as spool,
        SpooledGateway("gw1", carrier, spool, redeliver_after=30.0) as gw,
    ):
        stream = gw.events()
        carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x01", modem="m1"))
        await next_events(stream, 1)
        # A window to observe in, not a synchronisation: with nothing due for 30 s the
        # stream must sit waiting, not poll the spool.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), 0.3)
    assert spool.reads == 1  # the replay when the stream opened


def test_redeliver_after_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        SpooledGateway("gw1", LoopbackCarrier(), Spool(tmp_path / "s.db"), redeliver_after=0)
