"""The transport API over a real Mosquitto: sends, events, acks, shared workers, drops,
failures that must not end a bridge or a hub session."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiomqtt
import pytest

from gateway import payload
from gateway.mqtt import GatewayBridge, MqttSettings, MqttTransport, Topics
from gateway.mqtt.topics import parse_ack
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from gateway.transport import InboundSms, OutboundSms, SendResult, TransportEvent
from tests.gateway.loopback import LoopbackCarrier

T = TypeVar("T")
pytestmark = [pytest.mark.services, pytest.mark.timeout(20)]
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
METER = "+6281100000001"


@pytest.fixture
def settings(mosquitto_url: str) -> MqttSettings:
    # A topic root of its own keeps this test apart from anything else on the broker.
    return MqttSettings(topics=Topics(root=f"pintar-test-{uuid.uuid4().hex[:10]}/v1"))


@dataclass
class GatewayNode:
    name: str
    carrier: LoopbackCarrier
    gateway: SpooledGateway
    bridge: GatewayBridge
    spool: Spool


@asynccontextmanager
async def gateway_node(
    settings: MqttSettings, path: Path, name: str, redeliver_after: float = 30.0
) -> AsyncIterator[GatewayNode]:
    carrier = LoopbackCarrier()
    async with AsyncExitStack() as stack:
        spool = await stack.enter_async_context(Spool(path / f"{name}.db"))
        gateway = await stack.enter_async_context(
            SpooledGateway(name, carrier, spool, redeliver_after=redeliver_after)
        )
        bridge = await stack.enter_async_context(GatewayBridge(name, gateway, settings))
        await bridge.connected.wait()
        yield GatewayNode(name, carrier, gateway, bridge, spool)


async def take(stream: AsyncIterator[TransportEvent], count: int) -> list[TransportEvent]:
    return [await anext(stream) for _ in range(count)]


async def test_a_send_reaches_the_gateway_and_its_result_comes_back(
    settings: MqttSettings, tmp_path: Path
) -> None:
    async with (
        MqttTransport(settings) as hub,
        gateway_node(settings, tmp_path, "gw-a") as node,
    ):
        await hub.wait_for_gateway("gw-a")
        assert await hub.send(OutboundSms("msg-1", METER, data=b"\x01"))
        [result] = await take(hub.events(), 1)
        assert isinstance(result, SendResult) and result.message_id == "msg-1"
        assert result.gateway == "gw-a"
        assert [sms.message_id for sms in node.carrier.submitted] == ["msg-1"]
        await hub.ack(result.event_id)
        # The ack travels back (with whatever else the hub acked meanwhile: acks leave in
        # batches) and empties the gateway's spool.

        async def spool_empty() -> None:
            while await node.gateway.unacknowledged_events():  # noqa: ASYNC110 (the spool)
                await asyncio.sleep(0.01)

        await within("the ack applied by the gateway", spool_empty())
        node.carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x02", modem="m1"))
        [inbound] = await take(hub.events(), 1)
        assert inbound.event_id == "in-1"
        assert [e.event_id for e in await node.gateway.unacknowledged_events()] == ["in-1"]


async def test_with_no_gateway_online_send_says_no(settings: MqttSettings) -> None:
    async with MqttTransport(settings) as hub:
        await hub.connected.wait()
        assert not await hub.send(OutboundSms("msg-1", METER, text="x"))


async def test_two_hub_workers_share_the_inbound_stream(
    settings: MqttSettings, tmp_path: Path
) -> None:
    async with (
        MqttTransport(settings, worker="w1") as one,
        MqttTransport(settings, worker="w2") as two,
        gateway_node(settings, tmp_path, "gw-a") as node,
    ):
        await one.connected.wait()
        await two.connected.wait()
        seen: dict[str, list[str]] = {"w1": [], "w2": []}
        done = asyncio.Event()

        async def consume(worker: MqttTransport) -> None:
            async for event in worker.events():
                seen[worker.worker].append(event.event_id)
                await worker.ack(event.event_id)
                if len(seen["w1"]) + len(seen["w2"]) == 20:
                    done.set()

        tasks = [asyncio.create_task(consume(w)) for w in (one, two)]
        for n in range(20):
            node.carrier.inject(InboundSms(f"in-{n}", METER, NOW, data=bytes([n]), modem="m1"))
        await done.wait()
        for task in tasks:
            task.cancel()
        assert seen["w1"] and seen["w2"], "both workers must get a share"
        assert sorted(seen["w1"] + seen["w2"]) == sorted(f"in-{n}" for n in range(20))


async def test_a_worker_that_dies_before_acking_loses_nothing(
    settings: MqttSettings, tmp_path: Path
) -> None:
    async with gateway_node(settings, tmp_path, "gw-a", redeliver_after=0.3) as node:
        async with MqttTransport(settings, worker="doomed") as doomed:
            await doomed.connected.wait()
            node.carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x01", modem="m1"))
            [event] = await take(doomed.events(), 1)
            assert event.event_id == "in-1"
        # The worker is gone without an ack; a new one gets the event again.
        async with MqttTransport(settings, worker="heir") as heir:
            await heir.connected.wait()
            [again] = await take(heir.events(), 1)
            assert again.event_id == "in-1"
            await heir.ack("in-1")


async def test_the_gateway_survives_losing_its_broker_connection(
    settings: MqttSettings, tmp_path: Path
) -> None:
    async with (
        MqttTransport(settings) as hub,
        gateway_node(settings, tmp_path, "gw-a") as node,
    ):
        await hub.wait_for_gateway("gw-a")
        # Another client taking the gateway's client id makes the broker drop the gateway.
        node.bridge.connected.clear()
        async with settings.client(node.bridge.client_id, persistent=False):
            pass
        node.carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x01", modem="m1"))
        await node.bridge.connected.wait()
        [event] = await take(hub.events(), 1)
        assert event.event_id == "in-1"
        await hub.wait_for_gateway("gw-a")
        assert await hub.send(OutboundSms("msg-1", METER, text="after the drop"))
        results = [e for e in await take(hub.events(), 1) if isinstance(e, SendResult)]
        assert results and results[0].message_id == "msg-1"


async def within(label: str, step: Awaitable[T], limit: float = 10.0) -> T:
    """A hang guard (not a timing assertion): a step that never ends fails with its name
    and the stacks of every task, instead of stalling the suite."""
    try:
        return await asyncio.wait_for(step, limit)
    except TimeoutError:
        for task in asyncio.all_tasks():
            task.print_stack(limit=8, file=sys.stderr)
        pytest.fail(f"step {label!r} did not finish")


async def test_malformed_payloads_on_the_bus_are_ignored(
    settings: MqttSettings, tmp_path: Path
) -> None:
    hub = MqttTransport(settings)
    await within("hub start", hub.__aenter__())
    node_cm = gateway_node(settings, tmp_path, "gw-a")
    node = await within("gateway start", node_cm.__aenter__())
    try:
        await within("gateway online", hub.wait_for_gateway("gw-a"))
        rogue = settings.client("intruder", persistent=False)
        await within("rogue connect", rogue.__aenter__())
        events, send = settings.topics.events("gw-a"), settings.topics.send("gw-a")
        await within("garbage event", rogue.publish(events, b"\xff not json", qos=1))
        await within("garbage send", rogue.publish(send, b'{"v": 9}', qos=1))
        await within("rogue disconnect", rogue.__aexit__(None, None, None))
        node.carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x01", modem="m1"))
        [event] = await within("next event", take(hub.events(), 1))
        assert event.event_id == "in-1"
        assert node.carrier.submitted == []
    finally:
        await within("gateway stop", node_cm.__aexit__(None, None, None))
        await within("hub stop", hub.__aexit__(None, None, None))


def test_aiomqtt_is_v2() -> None:
    assert aiomqtt.__version__.startswith("2.")


async def until(label: str, condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Waits for a condition nothing announces, checking it often, with a hang guard."""

    async def checked() -> None:
        while not condition():  # noqa: ASYNC110 (a counter; nothing announces it)
            await asyncio.sleep(0.02)

    await within(label, checked(), limit)


async def test_a_send_the_spool_cannot_take_is_skipped_and_the_bridge_goes_on(
    settings: MqttSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        MqttTransport(settings) as hub,
        gateway_node(settings, tmp_path, "gw-a") as node,
    ):
        # A real write failure from the spool's own database, for one message only (a send
        # is one INSERT, written straight as SENDING).
        await node.spool.db.execute(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON outbound "
            "WHEN NEW.message_id = 'msg-poison' "
            "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END"
        )
        await within("gateway online", hub.wait_for_gateway("gw-a"))
        assert await hub.send(OutboundSms("msg-poison", METER, text="x"))
        assert await hub.send(OutboundSms("msg-ok", METER, text="y"))
        events = hub.events()
        [result] = await within("result of msg-ok", take(events, 1))
        # No result for the send the gateway could not take: the hub's outbox will retry.
        assert isinstance(result, SendResult) and result.message_id == "msg-ok"
        assert [sms.message_id for sms in node.carrier.submitted] == ["msg-ok"]
        assert "could not take send msg-poison" in caplog.text
        # Still the same bridge task, still serving.
        node.carrier.inject(InboundSms("in-1", METER, NOW, data=b"\x01", modem="m1"))
        [inbound] = await within("inbound after the failure", take(events, 1))
        assert inbound.event_id == "in-1" and node.bridge.connected.is_set()


class HeldGateway:
    """A local gateway whose send of 'msg-held' waits until released."""

    def __init__(self) -> None:
        self.taken: list[str] = []
        self.release = asyncio.Event()
        self.other_taken = asyncio.Event()

    async def send(self, sms: OutboundSms) -> bool:
        self.taken.append(sms.message_id)
        if sms.message_id == "msg-held":
            await self.release.wait()
        else:
            self.other_taken.set()
        return True

    async def events(self) -> AsyncIterator[TransportEvent]:
        await asyncio.Event().wait()  # no events
        yield InboundSms("never", METER, NOW, data=b"\x00")

    async def ack(self, event_id: str) -> None:
        await self.ack_many([event_id])

    async def ack_many(self, event_ids: Sequence[str]) -> None:
        return None


async def test_the_bridge_takes_a_send_while_an_earlier_one_is_still_being_spooled(
    settings: MqttSettings,
) -> None:
    # Concurrent, so that a burst from the hub shares the spool's commits.
    local = HeldGateway()
    async with (
        MqttTransport(settings) as hub,
        GatewayBridge("gw-a", local, settings),
    ):
        await within("gateway online", hub.wait_for_gateway("gw-a"))
        assert await hub.send(OutboundSms("msg-held", METER, text="x"))
        assert await hub.send(OutboundSms("msg-next", METER, text="y"))
        await within("the second send taken while the first waits", local.other_taken.wait())
        assert local.taken == ["msg-held", "msg-next"] and not local.release.is_set()
        local.release.set()  # the bridge's exit waits for sends under way


async def test_a_full_hub_queue_drops_events_that_the_gateway_delivers_again(
    settings: MqttSettings, tmp_path: Path
) -> None:
    async with (
        MqttTransport(settings, max_queued=2) as hub,
        gateway_node(settings, tmp_path, "gw-a", redeliver_after=0.3) as node,
    ):
        await within("gateway online", hub.wait_for_gateway("gw-a"))
        ids = [f"in-{n}" for n in range(6)]
        for n, event_id in enumerate(ids):
            node.carrier.inject(InboundSms(event_id, METER, NOW, data=bytes([n]), modem="m1"))
        await until("the queue overflows", lambda: hub.dropped > 0)
        seen: set[str] = set()
        events = hub.events()

        async def drain() -> None:
            while seen != set(ids):
                event = await anext(events)
                seen.add(event.event_id)
                await hub.ack(event.event_id)

        # The session survived the overflow: what was dropped arrives by redelivery.
        await within("every event, dropped ones again", drain())

        async def acks_applied() -> None:
            while await node.gateway.unacknowledged_events():  # noqa: ASYNC110 (in the spool)
                await asyncio.sleep(0.02)

        await within("every ack applied", acks_applied())


async def test_a_retried_send_goes_to_the_gateway_that_had_it_first(
    settings: MqttSettings, tmp_path: Path
) -> None:
    # Only the gateway that took a message can tell a retry is a duplicate; round robin
    # would otherwise hand the retry (after a lost broker acknowledgement) to the other.
    async with (
        MqttTransport(settings) as hub,
        gateway_node(settings, tmp_path, "gw-a") as a,
        gateway_node(settings, tmp_path, "gw-b") as b,
    ):
        await hub.wait_for_gateway("gw-a")
        await hub.wait_for_gateway("gw-b")
        sms = OutboundSms("msg-1", METER, data=b"\x01")
        for _ in range(4):
            assert await hub.send(sms)
        assert await hub.send(OutboundSms("msg-2", METER, data=b"\x02"))
        results = await take(hub.events(), 2)
        assert {r.message_id for r in results if isinstance(r, SendResult)} == {"msg-1", "msg-2"}
        carried = [s.message_id for s in (*a.carrier.submitted, *b.carrier.submitted)]
        assert carried.count("msg-1") == 1


async def test_a_batch_of_acks_reaches_the_gateway_as_one_message(
    settings: MqttSettings, tmp_path: Path
) -> None:
    # The gateway forgets acked events in one spool transaction per ack message, so a hub
    # batch's acks must not travel as hundreds of messages (hundreds of fsyncs).
    async with (
        MqttTransport(settings) as hub,
        gateway_node(settings, tmp_path, "gw-a") as node,
        aiomqtt.Client(settings.host, settings.port) as spy,
    ):
        await spy.subscribe(settings.topics.ack("gw-a"), qos=1)
        await hub.wait_for_gateway("gw-a")
        for n in range(40):
            node.carrier.inject(InboundSms(f"in-{n}", METER, NOW, data=bytes([n]), modem="m1"))
        events = await take(hub.events(), 40)
        for event in events:  # as the hub acks a batch: one after another, no yield between
            await hub.ack(event.event_id)
        message = await within("the ack message", anext(aiter(spy.messages)))
        assert isinstance(message.payload, bytes)
        assert parse_ack(message.payload) == [e.event_id for e in events]

        async def spool_empty() -> None:
            while await node.gateway.unacknowledged_events():  # noqa: ASYNC110 (the spool)
                await asyncio.sleep(0.01)

        await within("the acks applied by the gateway", spool_empty())


async def test_a_retry_waits_for_its_gateway_rather_than_going_to_another(
    settings: MqttSettings, tmp_path: Path
) -> None:
    async with MqttTransport(settings) as hub:
        async with gateway_node(settings, tmp_path, "gw-a"):
            await hub.wait_for_gateway("gw-a")
            sms = OutboundSms("msg-1", METER, data=b"\x01")
            assert await hub.send(sms)  # the only gateway online: gw-a takes it

        async def a_offline() -> None:
            while "gw-a" in hub.online_gateways:  # noqa: ASYNC110 (the retained status)
                await asyncio.sleep(0.01)

        await within("gw-a seen offline", a_offline())
        async with gateway_node(settings, tmp_path, "gw-b") as b:
            await hub.wait_for_gateway("gw-b")
            # gw-a may still send msg-1 when it is back: gw-b must not send it as well.
            assert not await hub.send(sms)
            assert await hub.send(OutboundSms("msg-2", METER, data=b"\x02"))

            async def result_of_msg_2() -> None:
                async for event in hub.events():  # gw-a's result for msg-1 may come first
                    if isinstance(event, SendResult) and event.message_id == "msg-2":
                        return

            await within("msg-2's send result", result_of_msg_2())
            assert [s.message_id for s in b.carrier.submitted] == ["msg-2"]


async def test_any_worker_offers_a_pinned_message_only_to_its_gateway_until_failover(
    settings: MqttSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The hub writes each message's gateway down before sending; a worker that restarted
    # (or another worker) pins it from there, with no memory of its own.
    async with gateway_node(settings, tmp_path, "gw-a"):
        pass  # gw-a was here once and is offline now (its retained status says so)
    sms = OutboundSms("msg-1", METER, data=b"\x01")
    async with (
        MqttTransport(settings, worker="patient", group="other") as patient,
        MqttTransport(settings, worker="impatient", failover_after=0.0) as impatient,
        gateway_node(settings, tmp_path, "gw-b") as b,
    ):
        for hub in (patient, impatient):
            await hub.wait_for_gateway("gw-b")
            assert hub.route_for("msg-1") == "gw-b"  # a new message: a gateway online
            hub.pin("msg-1", "gw-a")
            assert hub.route_for("msg-1") == "gw-a"
        assert not await patient.send(sms)
        assert b.carrier.submitted == []
        with caplog.at_level("WARNING"):
            assert await impatient.send(sms)  # gw-a away longer than its fail-over limit
        assert "gateway gw-a has been offline" in caplog.text
        assert impatient.route_for("msg-1") == "gw-b"
        [result] = await take(impatient.events(), 1)
        assert isinstance(result, SendResult) and result.gateway == "gw-b"
        assert [s.message_id for s in b.carrier.submitted] == ["msg-1"]


async def test_with_no_gateway_online_a_new_message_has_no_route(settings: MqttSettings) -> None:
    async with MqttTransport(settings) as hub:
        await within("connected", hub.connected.wait())
        assert hub.route_for("msg-1") is None


async def _sends_seen(
    settings: MqttSettings, tmp_path: Path, count: int
) -> tuple[list[bool], list[int], list[str]]:
    """`count` SMS sent at once (as the dispatcher does) to one gateway: what `send`
    answered, the number of SMS in each bus message on the send topic, and the SMS the
    gateway's carrier submitted."""
    sizes: list[int] = []
    async with (
        MqttTransport(settings) as hub,
        gateway_node(settings, tmp_path, "gw-a") as node,
        aiomqtt.Client(settings.host, settings.port) as spy,
    ):
        await spy.subscribe(settings.topics.send("gw-a"), qos=1)
        await hub.wait_for_gateway("gw-a")
        sms = [OutboundSms(f"msg-{n}", METER, data=bytes([n])) for n in range(count)]
        answers = await asyncio.gather(*(hub.send(s) for s in sms))

        async def all_seen() -> None:
            async for message in spy.messages:
                assert isinstance(message.payload, bytes)
                sizes.append(len(payload.loads_many(message.payload)))
                if sum(sizes) >= count:
                    return

        async def all_submitted() -> None:
            while len(node.carrier.submitted) < count:  # noqa: ASYNC110 (the carrier)
                await asyncio.sleep(0.01)

        await within("every send on the bus", all_seen())
        await within("every send submitted by the gateway", all_submitted())
        return list(answers), sizes, [s.message_id for s in node.carrier.submitted]


async def test_sends_made_at_once_share_bus_messages_and_each_is_submitted_once(
    settings: MqttSettings, tmp_path: Path
) -> None:
    answers, sizes, submitted = await _sends_seen(settings, tmp_path, 40)
    assert answers == [True] * 40
    assert sum(sizes) == 40 and len(sizes) < 40  # batched, nothing lost or doubled
    assert max(sizes) <= settings.sends_per_message
    assert sorted(submitted) == sorted(f"msg-{n}" for n in range(40))


async def test_one_sms_a_message_when_send_batches_are_off(
    settings: MqttSettings, tmp_path: Path
) -> None:
    plain = dataclasses.replace(settings, sends_per_message=1)
    answers, sizes, submitted = await _sends_seen(plain, tmp_path, 10)
    assert answers == [True] * 10
    assert sizes == [1] * 10  # each the plain document older gateways read
    assert sorted(submitted) == sorted(f"msg-{n}" for n in range(10))


async def test_a_send_batch_with_a_bad_item_takes_the_rest(
    settings: MqttSettings, tmp_path: Path
) -> None:
    async with gateway_node(settings, tmp_path, "gw-a") as node:
        good = [payload.to_document(OutboundSms(f"ok-{n}", METER, text="x")) for n in range(3)]
        document = {"v": 1, "kind": "batch", "items": [good[0], {"kind": "nonsense"}, *good[1:]]}
        async with aiomqtt.Client(settings.host, settings.port) as hub:
            await hub.publish(settings.topics.send("gw-a"), json.dumps(document).encode(), qos=1)

            async def submitted() -> None:
                while len(node.carrier.submitted) < 3:  # noqa: ASYNC110 (the carrier)
                    await asyncio.sleep(0.01)

            await within("the valid sends submitted", submitted())
        assert sorted(s.message_id for s in node.carrier.submitted) == ["ok-0", "ok-1", "ok-2"]


async def test_sends_not_yet_published_at_shutdown_are_refused_not_lost(
    settings: MqttSettings,
) -> None:
    hub = MqttTransport(settings)
    loop = asyncio.get_running_loop()
    cancelled: asyncio.Future[bool] = loop.create_future()
    waiting: asyncio.Future[bool] = loop.create_future()
    async with hub:
        await hub.connected.wait()
        # A flush cancelled before it published anything...
        hub._sends["gw-a"] = [(OutboundSms("early", METER, text="x"), cancelled)]
        flush = asyncio.create_task(hub._flush_sends())
        await asyncio.sleep(0)  # it starts, and is cancelled at its first await
        flush.cancel()
        await asyncio.gather(flush, return_exceptions=True)
        # ...and a send queued when the transport closes, its flush never started.
        hub._sends["gw-a"] = [(OutboundSms("late", METER, text="x"), waiting)]
    # Both refused (False), so the hub's outbox offers them again; neither caller hangs.
    assert cancelled.done() and waiting.done()
    assert waiting.result() is False
