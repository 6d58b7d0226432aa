"""Gateway side of the MQTT bus: publishes the gateway's events, takes sends and acks.

The gateway's spool is the source of truth. Events go out at QoS 1; an event stays in the
spool until a hub worker acks it on the ack topic. The bridge publishes whatever the
gateway's `events()` stream yields, and that stream is the one re-delivery mechanism: it
replays every unacked event when opened (each broker connection opens a new one) and yields
an event again when it stays unacked for the gateway's `redeliver_after` (the worker died,
the broker lost it). The hub deduplicates by event id. The session is persistent, so sends
queued while the gateway was away are delivered when it returns (the hub's outbox re-sends
anything older anyway).

A send the gateway cannot take (its spool cannot write) or an ack it cannot apply is logged
and skipped, never fatal: no send result goes back, so the hub's outbox sends it again, and
an unapplied ack leaves the event to be re-delivered and acked again.

Sends and acks are taken on concurrently (up to `IN_FLIGHT` at once), so that a burst from
the hub goes into the spool in a few group commits rather than one commit after another.
They run apart from the broker session: a connection lost meanwhile does not cut a send off
between its spool commit and its handover to the carrier.

A gateway with a spool (`spool_backlog`) also reports what waits in it: the retained
`online` status is published again every `spool_report_every` seconds with the counts in
a user property (topics.SPOOL_PROPERTY), for the hub's metrics. The payload stays `online`,
so a hub that reads only that is unaffected, and no topic or ACL line is added.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import payload
from gateway.mqtt.connection import MqttSettings, reconnecting, stop
from gateway.mqtt.topics import (
    OFFLINE,
    ONLINE,
    SPOOL_PROPERTY,
    SpoolReport,
    parse_ack,
    spool_property,
)
from gateway.payload import PayloadError
from gateway.transport import OutboundSms, TransportEvent

log = logging.getLogger(__name__)

#: Sends and ack lists being taken on at once; more wait in the MQTT client's queue.
IN_FLIGHT = 256


class LocalGateway(Protocol):
    async def send(self, sms: OutboundSms) -> bool: ...
    def events(self) -> AsyncIterator[TransportEvent]: ...
    async def ack(self, event_id: str) -> None: ...
    async def ack_many(self, event_ids: Sequence[str]) -> None: ...


@runtime_checkable
class CountsBacklog(Protocol):
    async def spool_backlog(self) -> dict[str, int]: ...


class GatewayBridge:
    def __init__(
        self,
        name: str,
        gateway: LocalGateway,
        settings: MqttSettings,
        *,
        spool_report_every: float = 60.0,
    ) -> None:
        if spool_report_every <= 0:
            raise ValueError(f"spool_report_every must be positive, not {spool_report_every}")
        self.name = name
        self._gateway = gateway
        self._spool_every = spool_report_every
        self._settings = settings
        self._topics = settings.topics
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._working: set[asyncio.Task[None]] = set()
        self._room = asyncio.Semaphore(IN_FLIGHT)

    @property
    def client_id(self) -> str:
        # Stable for a gateway (its persistent session), distinct per topic root.
        return f"pintar-gw-{self._topics.root.replace('/', '-')}-{self.name}"

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(
            reconnecting(
                f"gateway {self.name}", self._session, self._settings.max_backoff, self.connected
            )
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await stop(self._task)
        # Sends and acks under way finish (a spool commit and a handover each).
        try:
            await asyncio.gather(*self._working)
        finally:
            for task in self._working:
                task.cancel()

    async def _session(self) -> None:
        will = aiomqtt.Will(self._topics.status(self.name), OFFLINE, qos=1, retain=True)
        client = self._settings.client(self.client_id, persistent=True, will=will)
        async with client:
            await client.subscribe(self._topics.send(self.name), qos=1)
            await client.subscribe(self._topics.ack(self.name), qos=1)
            await client.publish(self._topics.status(self.name), ONLINE, qos=1, retain=True)
            self.connected.set()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._forward_events(client))
                    group.create_task(self._receive(client))
                    if isinstance(self._gateway, CountsBacklog):
                        group.create_task(self._report_spool(client, self._gateway))
            except* aiomqtt.MqttError as errors:
                raise errors.exceptions[0] from None
            except* asyncio.CancelledError:
                # Stopped on purpose: a clean disconnect sends no last will, so say it. Hub
                # workers then hold back retries of what this gateway took (not re-routed:
                # it may still send them) until it is back.
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(2):
                        await client.publish(
                            self._topics.status(self.name), OFFLINE, qos=1, retain=True
                        )
                raise

    async def _report_spool(self, client: aiomqtt.Client, spool: CountsBacklog) -> None:
        """The retained `online` again, with the spool's backlog, now and then every
        `spool_report_every` s: every hub worker reads the status topic, and one that
        starts later gets the last report at once."""
        topic = self._topics.status(self.name)
        while True:
            try:
                rows = await spool.spool_backlog()
            except Exception as error:  # an unreadable spool is not fatal to the bus
                log.warning("gateway %s: spool not counted: %s", self.name, error)
            else:
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                report = spool_property(SpoolReport(rows, datetime.now(UTC)))
                properties.UserProperty = [(SPOOL_PROPERTY, report)]
                await client.publish(topic, ONLINE, qos=1, retain=True, properties=properties)
            await asyncio.sleep(self._spool_every)

    async def _forward_events(self, client: aiomqtt.Client) -> None:
        """Publishes the gateway's events, as many as are waiting (up to
        `events_per_message`) in one bus message: under load each MQTT message, and each
        hub worker's decoding of it, carries many events instead of one; idle, an event
        goes out alone at once."""
        topic = self._topics.events(self.name)
        per_message = self._settings.events_per_message
        # A new stream per connection: it starts with every unacked event.
        stream = self._gateway.events()
        if per_message <= 1:
            async for event in stream:
                await client.publish(topic, payload.dumps(event), qos=1)
            return
        waiting: asyncio.Queue[TransportEvent] = asyncio.Queue(maxsize=per_message)

        async def pump() -> None:
            async for event in stream:
                await waiting.put(event)

        async with asyncio.TaskGroup() as group:
            group.create_task(pump())
            while True:
                batch = [await waiting.get()]
                while len(batch) < per_message and not waiting.empty():
                    batch.append(waiting.get_nowait())
                await client.publish(topic, payload.dumps_many(batch), qos=1)

    async def _receive(self, client: aiomqtt.Client) -> None:
        send_topic = self._topics.send(self.name)
        async for message in client.messages:
            raw = message.payload if isinstance(message.payload, bytes) else b""
            is_send = message.topic.matches(send_topic)
            acks = [] if is_send else parse_ack(raw)
            await self._room.acquire()
            task = asyncio.create_task(self._take_send(raw) if is_send else self._apply_acks(acks))
            self._working.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._working.discard(task)
        self._room.release()

    async def _take_send(self, raw: bytes) -> None:
        """One SMS, or a hub's batch of them (taken at once, so the spool group-commits
        them): an item that is not a valid send is logged and skipped by itself."""
        try:
            items = payload.loads_many(raw)
        except PayloadError as error:
            log.error("gateway %s: refused a send that is not a payload: %s", self.name, error)
            return
        sends: list[OutboundSms] = []
        for item in items:
            if isinstance(item, PayloadError):
                log.error("gateway %s: refused a send that is not a payload: %s", self.name, item)
            elif isinstance(item, OutboundSms):
                sends.append(item)
        await asyncio.gather(*(self._take_one(sms) for sms in sends))

    async def _take_one(self, sms: OutboundSms) -> None:
        try:
            await self._gateway.send(sms)
        except Exception:
            # Not fatal to the bridge: with no send result the hub's outbox tries again.
            log.exception(
                "gateway %s: could not take send %s; the hub will send it again",
                self.name,
                sms.message_id,
            )

    async def _apply_acks(self, event_ids: Sequence[str]) -> None:
        try:
            await self._gateway.ack_many(event_ids)
        except Exception:
            # The events stay unacked: they are delivered again and the hub acks them again.
            log.exception("gateway %s: could not apply %d ack(s)", self.name, len(event_ids))
