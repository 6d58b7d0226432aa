"""The gateway spool: a restart loses nothing and re-delivers what was not acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.spool import OutboundState, Spool
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    ModemStateChanged,
    ModemStatus,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def inbound(n: int) -> InboundSms:
    return InboundSms(
        event_id=f"in-{n}", sender="+6281234567890", received_at=NOW, data=bytes([n]), modem="m1"
    )


async def test_unacknowledged_events_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    async with Spool(path) as spool:
        for n in range(5):
            assert await spool.record_event(inbound(n), NOW) == n + 1
        await spool.ack("in-1")
        await spool.ack("in-3")
    async with Spool(path) as spool:
        events = [event for _, event in await spool.unacknowledged()]
    assert [e.event_id for e in events] == ["in-0", "in-2", "in-4"]
    assert events[1] == inbound(2)


async def test_an_event_is_stored_once(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.db") as spool:
        assert await spool.record_event(inbound(1), NOW) is not None
        assert await spool.record_event(inbound(1), NOW) is None
        assert len(await spool.unacknowledged()) == 1


async def test_every_event_kind_round_trips(tmp_path: Path) -> None:
    events: list[TransportEvent] = [
        inbound(7),
        SendResult(
            "sr-1", "msg-1", SendStatus.SENT, NOW, (12, 13), "+6281234567890", "gw", "m1", 2
        ),
        DeliveryReport("dr-1", "msg-1", "+6281234567890", 12, 0, NOW, NOW, "gw", "m1"),
        ModemStateChanged("ms-1", "m1", ModemStatus.HUNG, NOW, "no answer to AT+CMGS"),
    ]
    async with Spool(tmp_path / "s.db") as spool:
        for event in events:
            await spool.record_event(event, NOW)
        assert [e for _, e in await spool.unacknowledged()] == events


async def test_outbound_accepted_once_and_sending_is_requeued_after_a_crash(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    sms = OutboundSms("msg-1", "+6281234567890", text="Token Anda")
    async with Spool(path) as spool:
        assert await spool.accept(sms, NOW)
        assert not await spool.accept(sms, NOW)
        await spool.mark("msg-1", OutboundState.SENDING, NOW, count_attempt=True)
        assert await spool.pending() == []
    async with Spool(path) as spool:
        [again] = await spool.pending()
    assert again.sms == sms and again.state is OutboundState.QUEUED and again.attempts == 1


async def test_status_reports_match_the_newest_message_with_that_reference(
    tmp_path: Path,
) -> None:
    async with Spool(tmp_path / "s.db") as spool:
        to = "+6281234567890"
        await spool.record_sent_parts("old", "m1", [5], to, NOW - timedelta(hours=3))
        await spool.record_sent_parts("new", "m1", [5], to, NOW - timedelta(minutes=1))
        await spool.record_sent_parts("other-modem", "m2", [5], to, NOW)
        window = timedelta(hours=1)
        assert await spool.match_report("m1", 5, to, NOW, window) == "new"
        assert await spool.match_report("m1", 5, "+6289999999999", NOW, window) is None
        assert await spool.match_report("m1", 6, to, NOW, window) is None
        assert await spool.match_report("m1", 5, to, NOW, timedelta(seconds=30)) is None


async def test_purge_keeps_what_is_not_final(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.db") as spool:
        await spool.accept(OutboundSms("a", "+6281234567890", text="x"), NOW)
        await spool.accept(OutboundSms("b", "+6281234567890", text="y"), NOW)
        await spool.mark("a", OutboundState.SENT, NOW)
        await spool.purge(NOW + timedelta(days=1))
        assert await spool.outbound_state("a") is None
        state = await spool.outbound_state("b")
        assert state is not None and state.state is OutboundState.QUEUED


async def test_every_queued_sms_is_handed_over_after_a_restart_not_only_the_first_thousand(
    tmp_path: Path,
) -> None:
    async with Spool(tmp_path / "spool.db") as spool:
        for n in range(1_005):
            assert await spool.accept(OutboundSms(f"m-{n}", "+6281234567890", text="x"), NOW)
        assert len(await spool.pending()) == 1_005
        assert [p.sms.message_id for p in await spool.pending(limit=2)] == ["m-0", "m-1"]
