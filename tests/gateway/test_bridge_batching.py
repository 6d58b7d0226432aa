"""The gateway bridge puts the events waiting at once into one bus message (a batch
document, `events_per_message` at most), and each alone with `events_per_message = 1`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from gateway import payload
from gateway.mqtt import GatewayBridge, MqttSettings, Topics
from gateway.transport import InboundSms, OutboundSms, TransportEvent

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
EVENTS = [InboundSms(f"in-{n}", "+6281100000001", NOW, data=bytes([n])) for n in range(150)]


class Stop(Exception):
    """Ends the bridge's forwarding once every event is out."""


class Gateway:
    """A gateway whose stream has every event waiting (a reconnect replays the spool)."""

    async def send(self, sms: OutboundSms) -> bool:
        return True

    async def events(self) -> AsyncIterator[TransportEvent]:
        for event in EVENTS:
            yield event

    async def ack(self, event_id: str) -> None:
        return None

    async def ack_many(self, event_ids: Sequence[str]) -> None:
        return None


class Broker:
    """Stands in for the aiomqtt client: keeps what is published."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, body: bytes, qos: int) -> None:
        self.published.append((topic, body))
        if sum(len(payload.loads_many(b)) for _, b in self.published) == len(EVENTS):
            raise Stop


async def _forwarded(per_message: int) -> list[list[TransportEvent]]:
    settings = dataclasses.replace(
        MqttSettings(topics=Topics(root="t/v1")), events_per_message=per_message
    )
    bridge = GatewayBridge("gw-a", Gateway(), settings)
    broker = Broker()
    with pytest.raises((Stop, ExceptionGroup)):
        await bridge._forward_events(broker)  # type: ignore[arg-type]
    assert {topic for topic, _ in broker.published} == {settings.topics.events("gw-a")}
    out = []
    for _, body in broker.published:
        items = payload.loads_many(body)
        assert all(isinstance(i, InboundSms) for i in items)
        out.append(items)
    return out  # type: ignore[return-value]


async def test_waiting_events_share_bus_messages_in_order() -> None:
    messages = await _forwarded(64)
    assert [e for m in messages for e in m] == EVENTS  # each once, in order
    assert max(len(m) for m in messages) <= 64
    assert len(messages) < len(EVENTS) // 2  # batched: not one message each


async def test_one_event_a_message_when_batches_are_off() -> None:
    messages = await _forwarded(1)
    assert messages == [[e] for e in EVENTS]
    # Each is the plain single-event document older hub workers read.
    assert all(len(m) == 1 for m in messages)
