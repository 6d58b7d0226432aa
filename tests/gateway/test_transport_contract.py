"""The transport contract (gateway/transport.py), one suite for every bus (issue 8).

Each test runs against the in-process bus (the hub holds the `SpooledGateway`) and the MQTT
bus (`MqttTransport` ↔ `GatewayBridge` ↔ the same `SpooledGateway`, real Mosquitto), both in
front of the simulated SMS network. Only what both buses promise is asserted; where one
breaks a promise the other keeps, the case is a strict xfail naming the bug.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.mqtt import MqttSettings, Topics
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    OutboundSms,
    SendResult,
    SendStatus,
)
from tests.gateway.transport_contract_support import (
    BARRED,
    GATEWAY,
    METER,
    NOBODY,
    PHONE,
    ContractHarness,
)

pytestmark = pytest.mark.timeout(30)

#: Binary content as a meter frame would carry it: every byte value an 8-bit SMS may hold.
FRAME = bytes(range(140))
TEXT = "Token 1234-5678-9012 diterima ✓ (Rp 50.000)"


@pytest.fixture
def redeliver_after() -> float:
    """The gateway's redelivery interval; long unless a test asks for redelivery."""
    return 30.0


@pytest.fixture(params=["in-process", pytest.param("mqtt", marks=pytest.mark.services)])
async def bus(
    request: pytest.FixtureRequest, tmp_path: Path, redeliver_after: float
) -> AsyncIterator[ContractHarness]:
    spool = tmp_path / "spool.db"
    if request.param == "in-process":
        harness = ContractHarness.in_process(spool, redeliver_after)
    else:
        # Fails rather than skips when PINTAR_REQUIRE_SERVICES=1 and Mosquitto is away.
        url = urlsplit(request.getfixturevalue("mosquitto_url"))
        settings = MqttSettings(
            host=url.hostname or "127.0.0.1",
            port=url.port or 1883,
            # A root of its own keeps parallel runs apart on the shared broker.
            topics=Topics(root=f"pintar-contract-{uuid.uuid4().hex[:10]}/v1"),
            session_expiry=60,  # the broker need not keep a test gateway's session long
            max_backoff=1.0,
        )
        harness = ContractHarness.over_mqtt(spool, settings, redeliver_after)
    async with harness:
        yield harness


# -- sending ----------------------------------------------------------------------------


async def test_an_sms_sent_is_carried_once_and_reported_sent(bus: ContractHarness) -> None:
    meter = bus.handset(METER)
    assert await bus.transport.send(OutboundSms("msg-text", METER, text=TEXT))
    assert await bus.transport.send(OutboundSms("msg-data", METER, data=FRAME))

    for message_id in ("msg-text", "msg-data"):
        result = await bus.result_of(message_id)
        assert result.status is SendStatus.SENT
        assert result.recipient == METER and result.gateway == GATEWAY
        assert result.message_references and result.error is None
    await bus.wait_for("both arrive", lambda: len(meter.received) >= 2)
    assert sorted((sms.text or "", sms.data or b"") for sms in meter.received) == [
        ("", FRAME),
        (TEXT, b""),
    ]


async def test_a_refused_send_comes_back_as_a_failed_send_result(bus: ContractHarness) -> None:
    barred = bus.handset(BARRED)
    assert await bus.transport.send(OutboundSms("msg-barred", BARRED, text="x"))
    result = await bus.result_of("msg-barred")
    assert result.status is SendStatus.FAILED
    assert result.error is not None and "CMS ERROR: 21" in result.error
    assert result.message_references == () and result.gateway == GATEWAY
    assert barred.received == []


async def test_the_same_message_id_is_carried_once(bus: ContractHarness) -> None:
    meter = bus.handset(METER)
    sms = OutboundSms("msg-once", METER, text="sekali saja")
    assert await bus.transport.send(sms)
    assert await bus.transport.send(sms)
    await bus.result_of("msg-once")
    assert await bus.transport.send(sms)  # again after it went out
    # Sends are handled in order on both buses, so once this one is through, a second copy
    # of the first would have been too.
    assert await bus.transport.send(OutboundSms("msg-after", METER, text="sesudahnya"))
    await bus.result_of("msg-after")
    await bus.wait_for("marker arrives", lambda: len(meter.received) >= 2)
    assert [sms.text for sms in meter.received] == ["sekali saja", "sesudahnya"]
    results = {e.event_id for e in bus.seen if isinstance(e, SendResult)}
    assert len(results) == 2


async def test_a_message_id_sent_before_a_restart_is_not_carried_again_after_it(
    bus: ContractHarness,
) -> None:
    meter = bus.handset(METER)
    sms = OutboundSms("msg-durable", METER, data=b"\x01\x02")
    assert await bus.transport.send(sms)
    result = await bus.result_of("msg-durable")
    await bus.ack(result.event_id)
    await bus.restart_gateway()
    assert await bus.transport.send(sms)
    assert await bus.transport.send(OutboundSms("msg-after", METER, data=b"\x03"))
    await bus.result_of("msg-after")
    await bus.wait_for("marker arrives", lambda: len(meter.received) >= 2)
    assert [sms.data for sms in meter.received] == [b"\x01\x02", b"\x03"]


async def test_delivery_reports_carry_the_message_id_of_the_sent_sms(
    bus: ContractHarness,
) -> None:
    bus.handset(METER)
    assert await bus.transport.send(OutboundSms("msg-reached", METER, text="a"))
    assert await bus.transport.send(OutboundSms("msg-lost", NOBODY, text="b"))
    reached = await bus.first(
        DeliveryReport, "report of msg-reached", lambda e: e.message_id == "msg-reached"
    )
    lost = await bus.first(
        DeliveryReport, "report of msg-lost", lambda e: e.message_id == "msg-lost"
    )
    assert reached.delivered and reached.final and reached.recipient == METER
    assert not lost.delivered and lost.final and lost.recipient == NOBODY
    sent = {e.message_id: e for e in bus.seen if isinstance(e, SendResult)}
    assert reached.message_reference in sent["msg-reached"].message_references
    assert lost.message_reference in sent["msg-lost"].message_references
    assert reached.gateway == lost.gateway == GATEWAY


# -- receiving --------------------------------------------------------------------------


async def test_an_sms_from_the_network_arrives_with_sender_and_content_intact(
    bus: ContractHarness,
) -> None:
    bus.sms_from_network(PHONE, text=TEXT)
    bus.sms_from_network(METER, data=FRAME)
    text = await bus.first(InboundSms, "text SMS", lambda e: e.text is not None)
    data = await bus.first(InboundSms, "data SMS", lambda e: e.data is not None)
    assert (text.sender, text.text, text.data) == (PHONE, TEXT, None)
    assert (data.sender, data.data, data.text) == (METER, FRAME, None)
    for event in (text, data):
        assert event.complete and event.gateway == GATEWAY
        assert event.received_at.tzinfo is not None and event.smsc_timestamp is not None
    assert text.event_id != data.event_id


# -- acknowledgement and redelivery -----------------------------------------------------


async def test_unacked_events_survive_a_gateway_restart_with_the_same_ids(
    bus: ContractHarness,
) -> None:
    bus.handset(METER)
    bus.sms_from_network(METER, data=b"\x10")  # never acked
    bus.sms_from_network(METER, data=b"\x11")  # acked
    assert await bus.transport.send(OutboundSms("msg-1", METER, text="a"))  # result not acked
    kept = await bus.first(InboundSms, "inbound 0x10", lambda e: e.data == b"\x10")
    acked = await bus.first(InboundSms, "inbound 0x11", lambda e: e.data == b"\x11")
    result = await bus.result_of("msg-1")
    await bus.ack(acked.event_id)

    await bus.restart_gateway()
    await bus.wait_for("replayed", lambda: len(bus.with_id(kept.event_id)) >= 2)
    await bus.wait_for("replayed", lambda: len(bus.with_id(result.event_id)) >= 2)
    # Same id, same content: the hub deduplicates by event id and loses nothing by it.
    assert bus.with_id(kept.event_id)[-1] == kept
    assert bus.with_id(result.event_id)[-1] == result
    # A fresh SMS after the replay proves the acked one was not among it.
    bus.sms_from_network(METER, data=b"\x12")
    await bus.first(InboundSms, "inbound 0x12", lambda e: e.data == b"\x12")
    assert len(bus.with_id(acked.event_id)) == 1


async def test_acks_of_unknown_or_already_acked_ids_are_harmless(bus: ContractHarness) -> None:
    await bus.transport.ack("no-such-event")
    bus.sms_from_network(METER, text="satu")
    first = await bus.first(InboundSms, "first SMS", lambda e: e.text == "satu")
    await bus.ack(first.event_id)
    await bus.transport.ack(first.event_id)
    await bus.transport.ack("no-such-event")
    bus.sms_from_network(METER, text="dua")
    second = await bus.first(InboundSms, "second SMS", lambda e: e.text == "dua")
    assert second.event_id != first.event_id
    await bus.ack(second.event_id)
    assert await bus.gateway.unacknowledged_events() == []


@pytest.mark.parametrize("redeliver_after", [0.2])
async def test_an_unacked_event_is_delivered_again_without_a_restart(
    bus: ContractHarness,
) -> None:
    """The hub's consumer leaves an event unacked when storing it fails
    (operator_data/hub/hub.py `_consume`) and counts on getting it again on the stream it
    holds: gateway/transport.py promises redelivery "after a restart, or by a sweep"."""
    bus.sms_from_network(METER, text="ulang")
    event = await bus.first(InboundSms, "first delivery", lambda e: e.text == "ulang")
    await bus.wait_for(
        "redelivery on the same stream", lambda: len(bus.with_id(event.event_id)) >= 2, limit=6.0
    )
    assert bus.with_id(event.event_id)[1] == event
    assert bus.restarts == 0


@pytest.mark.parametrize("redeliver_after", [0.2])
async def test_a_consumer_that_comes_back_gets_what_it_left_unacked(
    bus: ContractHarness,
) -> None:
    bus.sms_from_network(METER, text="belum")
    event = await bus.first(InboundSms, "first delivery", lambda e: e.text == "belum")
    await bus.restart_hub()
    since = len(bus.seen)
    await bus.wait_for(
        "delivered to the new consumer",
        lambda: any(e.event_id == event.event_id for e in bus.seen[since:]),
    )
    again = next(e for e in bus.seen[since:] if e.event_id == event.event_id)
    assert again == event
    await bus.ack(again.event_id)
    assert await bus.gateway.unacknowledged_events() == []


async def test_a_late_delivery_report_after_a_restart_finds_its_own_message(
    bus: ContractHarness,
) -> None:
    """Status reports carry only a 0–255 reference, matched to the newest part sent with it:
    a carrier that numbered its sends from the start again after a restart would pin a late
    report for a message sent before it on the first message after it."""
    meter = bus.held_handset(METER)  # takes nothing, so reports wait, until released
    assert await bus.transport.send(OutboundSms("msg-before", METER, text="sebelum"))
    before = await bus.result_of("msg-before")
    await bus.ack(before.event_id)
    await bus.restart_gateway()
    assert await bus.transport.send(OutboundSms("msg-after", METER, text="sesudah"))
    after = await bus.result_of("msg-after")
    assert set(before.message_references).isdisjoint(after.message_references)

    meter.release.set()
    for sent in (before, after):
        report = await bus.first(
            DeliveryReport, f"report of {sent.message_id}", reporting(sent.message_references)
        )
        assert report.message_id == sent.message_id and report.delivered


def reporting(references: tuple[int, ...]) -> Callable[[DeliveryReport], bool]:
    return lambda report: report.message_reference in references
