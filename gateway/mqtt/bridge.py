"""Gateway side of the MQTT bus: publishes the gateway's events, takes sends and acks.

The gateway's spool is the source of truth. Events go out at QoS 1; an event stays in the
spool until a hub worker acks it on the ack topic. An event published but not acked within
`redeliver_after` (the worker died, the broker lost it) is published again; the hub
deduplicates by event id. The session is persistent, so sends queued while the gateway was
away are delivered when it returns (the hub's outbox re-sends anything older anyway).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Protocol, Self

import aiomqtt

from gateway import payload
from gateway.mqtt.connection import MqttSettings, reconnecting, stop
from gateway.mqtt.topics import OFFLINE, ONLINE, parse_ack
from gateway.payload import PayloadError
from gateway.transport import OutboundSms, TransportEvent

log = logging.getLogger(__name__)


class LocalGateway(Protocol):
    async def send(self, sms: OutboundSms) -> bool: ...
    def events(self) -> AsyncIterator[TransportEvent]: ...
    async def ack(self, event_id: str) -> None: ...
    async def unacknowledged_events(self) -> list[TransportEvent]: ...


class GatewayBridge:
    def __init__(
        self,
        name: str,
        gateway: LocalGateway,
        settings: MqttSettings,
        *,
        redeliver_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._gateway = gateway
        self._settings = settings
        self._topics = settings.topics
        self._redeliver_after = redeliver_after
        self._clock = clock
        self._published_at: dict[str, float] = {}
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

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

    async def _session(self) -> None:
        will = aiomqtt.Will(self._topics.status(self.name), OFFLINE, qos=1, retain=True)
        client = self._settings.client(self.client_id, persistent=True, will=will)
        async with client:
            self._client = client
            self._published_at.clear()  # a new connection republishes everything unacked
            await client.subscribe(self._topics.send(self.name), qos=1)
            await client.subscribe(self._topics.ack(self.name), qos=1)
            await client.publish(self._topics.status(self.name), ONLINE, qos=1, retain=True)
            self.connected.set()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._forward_events(client))
                    group.create_task(self._receive(client))
                    group.create_task(self._sweep_periodically(client))
            except* aiomqtt.MqttError as errors:
                raise errors.exceptions[0] from None
            finally:
                self._client = None

    async def _publish(self, client: aiomqtt.Client, event: TransportEvent) -> None:
        await client.publish(self._topics.events(self.name), payload.dumps(event), qos=1)
        self._published_at[event.event_id] = self._clock()

    async def _forward_events(self, client: aiomqtt.Client) -> None:
        async for event in self._gateway.events():
            await self._publish(client, event)

    async def _receive(self, client: aiomqtt.Client) -> None:
        send_topic = self._topics.send(self.name)
        async for message in client.messages:
            raw = message.payload if isinstance(message.payload, bytes) else b""
            if message.topic.matches(send_topic):
                try:
                    item = payload.loads(raw)
                except PayloadError as error:
                    log.error(
                        "gateway %s: refused a send that is not a payload: %s", self.name, error
                    )
                    continue
                if isinstance(item, OutboundSms):
                    await self._gateway.send(item)
            else:
                for event_id in parse_ack(raw):
                    await self._gateway.ack(event_id)
                    self._published_at.pop(event_id, None)

    async def _sweep_periodically(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(max(self._redeliver_after / 2, 0.05))
            await self.sweep(client)

    async def sweep(self, client: aiomqtt.Client | None = None) -> int:
        """Publishes again every unacked event whose last publication is older than
        `redeliver_after`; returns how many."""
        client = client or self._client
        if client is None:
            return 0
        now = self._clock()
        count = 0
        for event in await self._gateway.unacknowledged_events():
            published = self._published_at.get(event.event_id)
            if published is not None and now - published < self._redeliver_after:
                continue
            await self._publish(client, event)
            count += 1
        return count
