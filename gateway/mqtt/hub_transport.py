"""Hub side of the MQTT bus: a `Transport` whose events come from every gateway.

Hub workers share the event stream through `$share/<group>/...`, so each event goes to one
worker; a worker that dies before acking loses nothing: the gateway publishes the event again
after its redelivery interval, and the store deduplicates by event id. Sends go to a gateway
that is online (retained status), chosen by rendezvous hashing of the message id; with none
online `send` returns False and the hub's outbox keeps the SMS for a later try. A message
offered again goes to the gateway that had it (`Routing`: the hub pins the gateway it wrote
down), and is refused while that gateway is offline — up to `failover_after` seconds, after
which it goes to another gateway, with a warning that it may arrive twice.

Events wait in a bounded queue (`max_queued`) until the hub takes them. When it is full an
arriving event is dropped with a warning rather than waited for: the client has already
acknowledged it to the broker, so waiting would not slow the gateways down, only move the
backlog into aiomqtt's unbounded incoming queue (while gateway status changes wait behind
it). Dropping is safe because the event stays in its gateway's spool until a hub acks it,
and the gateway delivers it again after its `redeliver_after`.

Sends the hub makes without yielding in between (the dispatcher starts a whole claim at
once) leave as one batch document per gateway (`sends_per_message` at most), the way acks
do: each bus message, and the paho work of publishing and decoding it on both sides, then
carries many SMS. Every SMS in the batch shares the publish's outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Self

import aiomqtt

from gateway import payload
from gateway.mqtt.connection import MqttSettings, reconnecting, stop
from gateway.mqtt.topics import (
    ONLINE,
    SPOOL_PROPERTY,
    SpoolReport,
    ack_payload,
    parse_spool_property,
)
from gateway.payload import PayloadError
from gateway.transport import OutboundSms, TransportEvent

log = logging.getLogger(__name__)


_REMEMBERED_SENDS = 100_000  # retries come within minutes; this is hours of sends
_ACKS_PER_MESSAGE = 500


def _rendezvous(message_id: str, gateways: list[str]) -> str:
    """The gateway for a message: the same one from every hub worker, and after a worker's
    restart (highest-random-weight hashing), so a retry never goes to a second gateway
    while the first is online; spread evenly over the gateways online."""
    return max(
        gateways,
        key=lambda name: hashlib.blake2b(f"{message_id}|{name}".encode(), digest_size=8).digest(),
    )


class MqttTransport:
    def __init__(
        self,
        settings: MqttSettings,
        *,
        group: str = "hub",
        worker: str | None = None,
        max_queued: int = 10_000,
        failover_after: float = 300.0,
    ) -> None:
        self._settings = settings
        self._topics = settings.topics
        self._group = group
        self.worker = worker or uuid.uuid4().hex[:8]
        self._client: aiomqtt.Client | None = None
        self._events: asyncio.Queue[TransportEvent] = asyncio.Queue(maxsize=max_queued)
        self.dropped = 0  # events dropped because the queue was full (gateways re-deliver)
        self._dropping = False  # in an overflow episode: warn at its start and end only
        self._origin: dict[str, str] = {}  # event id → gateway, until acked
        self._online: dict[str, bool] = {}
        self._spools: dict[str, SpoolReport] = {}  # gateway → its last spool report
        self.failover_after = failover_after
        # gateway → loop time this worker first knew it offline (for the fail-over limit)
        self._offline_since: dict[str, float] = {}
        # message id → the gateway it was first published to: a retry goes there again,
        # since only that gateway can tell it is a duplicate (the broker may have delivered
        # a publish whose acknowledgement a broker cut lost).
        self._sent_to: OrderedDict[str, str] = OrderedDict()
        # Acks waiting to be published, per gateway: a batch's acks leave as one message.
        self._acks: dict[str, list[str]] = {}
        self._flushing: asyncio.Task[None] | None = None
        # Sends waiting to be published, per gateway, each with its caller's future.
        self._sends: dict[str, list[tuple[OutboundSms, asyncio.Future[bool]]]] = {}
        self._sending: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._status_changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(
            reconnecting(
                f"hub worker {self.worker}",
                self._session,
                self._settings.max_backoff,
                self.connected,
            )
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in (self._sending, self._flushing):
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        self._refuse_waiting_sends()
        await stop(self._task)

    @property
    def online_gateways(self) -> list[str]:
        return sorted(name for name, online in self._online.items() if online)

    async def _session(self) -> None:
        client = self._settings.client(f"pintar-hub-{self.worker}", persistent=False)
        async with client:
            await client.subscribe(self._topics.all_status(), qos=1)
            await client.subscribe(self._topics.shared_events(self._group), qos=1)
            self._client = client
            self.connected.set()
            try:
                async for message in client.messages:
                    if self._route(message):
                        async with self._status_changed:
                            self._status_changed.notify_all()
            finally:
                self._client = None

    @property
    def spool_reports(self) -> Mapping[str, SpoolReport]:
        """Each gateway's last spool backlog report (its `online` status's user property),
        kept while the gateway is offline: the hub's metrics show how old it is."""
        return dict(self._spools)

    async def wait_for_spool_report(
        self, gateway: str, accept: Callable[[SpoolReport], bool] = lambda _: True
    ) -> SpoolReport:
        """Returns `gateway`'s spool report once one that `accept` takes has come."""
        async with self._status_changed:
            await self._status_changed.wait_for(
                lambda: gateway in self._spools and accept(self._spools[gateway])
            )
            return self._spools[gateway]

    def _note_spool(self, gateway: str, message: aiomqtt.Message) -> None:
        found = getattr(message.properties, "UserProperty", None) or []
        for key, value in found:
            if key != SPOOL_PROPERTY:
                continue
            report = parse_spool_property(value)
            if report is None:
                log.warning("gateway %s: spool report not understood: %.200r", gateway, value)
            else:
                self._spools[gateway] = report

    async def wait_for_gateway(self, gateway: str) -> None:
        """Returns once `gateway` is known to be online."""
        async with self._status_changed:
            await self._status_changed.wait_for(lambda: self._online.get(gateway, False))

    def _route(self, message: aiomqtt.Message) -> bool:
        """Queues an event, or records a gateway status (then returns True)."""
        topic = message.topic.value
        gateway = self._topics.gateway_of(topic)
        raw = message.payload if isinstance(message.payload, bytes) else b""
        if gateway is None:
            return False
        if topic == self._topics.status(gateway):
            self._online[gateway] = raw == ONLINE
            self._note_spool(gateway, message)
            if raw == ONLINE:
                self._offline_since.pop(gateway, None)
            else:
                self._offline_since.setdefault(gateway, asyncio.get_running_loop().time())
            return True
        try:
            items = payload.loads_many(raw)  # one event, or a gateway's batch of them
        except PayloadError as error:
            log.error("event from gateway %s is not a payload: %s", gateway, error)
            return False
        for item in items:
            if isinstance(item, PayloadError):
                log.error("event from gateway %s is not a payload: %s", gateway, item)
            elif not isinstance(item, OutboundSms):
                self._enqueue(item, gateway)
        return False

    def _enqueue(self, event: TransportEvent, gateway: str) -> None:
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                log.warning(
                    "hub worker %s: %d events queued, dropping new ones until the hub catches "
                    "up (their gateways deliver them again)",
                    self.worker,
                    self._events.qsize(),
                )
            return
        if self._dropping:
            self._dropping = False
            log.warning(
                "hub worker %s: queue has room again (%d dropped so far)", self.worker, self.dropped
            )
        self._origin[event.event_id] = gateway

    def route_for(self, message_id: str) -> str | None:
        pinned = self._sent_to.get(message_id)
        if pinned is not None:
            return pinned
        gateways = self.online_gateways
        return _rendezvous(message_id, gateways) if gateways else None

    def pin(self, message_id: str, gateway: str) -> None:
        self._sent_to[message_id] = gateway
        self._sent_to.move_to_end(message_id)
        while len(self._sent_to) > _REMEMBERED_SENDS:
            self._sent_to.popitem(last=False)

    def _waits_for(self, message_id: str, gateway: str) -> bool:
        """The message's gateway is offline: wait for it, unless it has been away too long."""
        now = asyncio.get_running_loop().time()
        away = now - self._offline_since.setdefault(gateway, now)
        if away < self.failover_after:
            log.info("%s waits for gateway %s to come back", message_id, gateway)
            return True
        log.warning(
            "%s: gateway %s has been offline for %.0f s: sending through another (if %s "
            "still holds it, it may arrive twice)",
            message_id,
            gateway,
            away,
            gateway,
        )
        return False

    async def send(self, sms: OutboundSms) -> bool:
        client, gateways = self._client, self.online_gateways
        if client is None or not gateways:
            return False
        gateway = self._sent_to.get(sms.message_id)
        if gateway is not None and gateway not in gateways:
            # It may have the message in its spool and send it once it is back: another
            # gateway now could make it two SMS. Refused, so the hub tries again later.
            if self._waits_for(sms.message_id, gateway):
                return False
            gateway = None
        if gateway is None:
            gateway = _rendezvous(sms.message_id, gateways)
        self.pin(sms.message_id, gateway)
        if self._settings.sends_per_message <= 1:
            try:
                await client.publish(self._topics.send(gateway), payload.dumps(sms), qos=1)
            except aiomqtt.MqttError:
                return False
            return True
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._sends.setdefault(gateway, []).append((sms, outcome))
        if self._sending is None or self._sending.done():
            # Runs once the caller yields, like the acks' flush: the sends started meanwhile
            # go out together.
            self._sending = asyncio.create_task(self._flush_sends())
        return await outcome

    async def _flush_sends(self) -> None:
        per_message = self._settings.sends_per_message
        try:
            while self._sends:
                pending, self._sends = self._sends, {}
                for gateway, queued in pending.items():
                    for start in range(0, len(queued), per_message):
                        chunk = queued[start : start + per_message]
                        await self._publish_sends(gateway, chunk)
        finally:
            self._refuse_waiting_sends()

    def _refuse_waiting_sends(self) -> None:
        # Cancelled or shutting down: what was not published is refused, and the hub's
        # outbox offers it again.
        for queued in self._sends.values():
            for _, outcome in queued:
                if not outcome.done():
                    outcome.set_result(False)
        self._sends = {}

    async def _publish_sends(
        self, gateway: str, chunk: list[tuple[OutboundSms, asyncio.Future[bool]]]
    ) -> None:
        items = [sms for sms, _ in chunk]
        document = payload.dumps_many(items)  # one SMS alone: its plain document
        client = self._client
        published = False
        try:
            if client is not None:
                await client.publish(self._topics.send(gateway), document, qos=1)
                published = True
        except aiomqtt.MqttError:
            published = False
        finally:
            for _, outcome in chunk:
                if not outcome.done():
                    outcome.set_result(published)

    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            yield await self._events.get()

    async def ack(self, event_id: str) -> None:
        gateway = self._origin.pop(event_id, None)
        if gateway is None or self._client is None:
            return  # not acked now: the gateway publishes it again and the store dedups
        self._acks.setdefault(gateway, []).append(event_id)
        if self._flushing is None or self._flushing.done():
            # Runs once the caller yields: a hub acks a whole batch without yielding, so
            # the batch's acks reach each gateway as one message instead of hundreds.
            self._flushing = asyncio.create_task(self._flush_acks())

    async def _flush_acks(self) -> None:
        while self._acks:
            pending, self._acks = self._acks, {}
            for gateway, event_ids in pending.items():
                for start in range(0, len(event_ids), _ACKS_PER_MESSAGE):
                    chunk = event_ids[start : start + _ACKS_PER_MESSAGE]
                    client = self._client
                    try:
                        if client is None:
                            raise aiomqtt.MqttError("not connected")
                        await client.publish(self._topics.ack(gateway), ack_payload(chunk), qos=1)
                    except aiomqtt.MqttError:
                        log.warning(
                            "%d ack(s) to %s lost; those events will be redelivered",
                            len(chunk),
                            gateway,
                        )
