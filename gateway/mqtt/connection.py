"""Connecting to the broker: settings, TLS, and a reconnect loop with back-off."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.mqtt.topics import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls_ca_file: str | None = None  # set to use TLS (port 8883 in deploy/)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    topics: Topics = field(default_factory=Topics)
    keepalive: int = 30
    session_expiry: int = 3600  # seconds the broker keeps a gateway's queued sends
    max_backoff: float = 30.0
    #: Gateway side: events carried by one bus message at most when several are waiting
    #: (1: one event a message, as hub workers older than the batch document expect).
    events_per_message: int = 32
    #: Hub side: SMS carried by one bus message at most when several are sent at once (1:
    #: one SMS a message, as gateways older than batched sends expect).
    sends_per_message: int = 32

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_ca_file is None:
            return None
        context = ssl.create_default_context(cafile=self.tls_ca_file)
        if self.tls_cert_file:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return context

    def client(
        self, identifier: str, *, persistent: bool, will: aiomqtt.Will | None = None
    ) -> aiomqtt.Client:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.session_expiry if persistent else 0
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=not persistent,
            properties=properties,
            keepalive=self.keepalive,
            will=will,
            tls_context=self.tls_context(),
        )


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancels a connection task and waits until it has really ended.

    A cancellation that lands while the MQTT client is connecting or disconnecting can be
    swallowed (it surfaces as an MqttError and the loop reconnects), so cancel until done.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        log.warning("connection task ended with %r", task.exception())


async def reconnecting(
    name: str,
    session: Callable[[], Awaitable[None]],
    max_backoff: float,
    connected: asyncio.Event | None = None,
) -> None:
    """Runs `session` again whenever the broker connection is lost, backing off 0.1 s → max."""
    delay = 0.1
    while True:
        try:
            await session()
            delay = 0.1
        except aiomqtt.MqttError as error:
            if connected is not None:
                connected.clear()
            log.warning("%s: broker connection lost (%s); retrying in %.1f s", name, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
