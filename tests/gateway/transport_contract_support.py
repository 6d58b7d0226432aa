"""One harness for the transport contract, over either bus.

Both buses carry the same simulated SMS network (meter_sim.network) through one gateway node
(`SpooledGateway` on a file spool, `NetworkCarrier` at the gateway's SIM number):

- in-process: the hub holds the `SpooledGateway` itself;
- mqtt: the hub holds an `MqttTransport`, the node runs a `GatewayBridge` on a real broker.

The harness pumps whatever the hub-side transport yields into `seen`, lets the network send
SMS to the gateway and shows what handsets on the network received, and restarts the gateway
node (same spool file) on demand. Waits are on conditions, each with a hang guard.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.mqtt import GatewayBridge, MqttSettings, MqttTransport
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from gateway.transport import (
    OutboundSms,
    SendResult,
    SendStatus,
    Transport,
    TransportEvent,
)
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork
from meter_sim.network.carrier import NetworkCarrier

E = TypeVar("E")

GATEWAY = "gw-contract"
GATEWAY_SIM = "+6281200000900"  # the gateway's number on the simulated network
METER = "+6281100000001"
PHONE = "+6281300000002"
BARRED = "+6281100000666"  # the carrier refuses it outright
NOBODY = "+6281100000777"  # nothing attached: the network reports it undeliverable
CARRIER_MODEM = "sim0"  # the SIM the carrier reports sends and status reports from

#: A hang guard, not a timing assertion: generous because the machine is shared.
DEADLINE = 10.0


class Handset:
    """A number on the simulated network that keeps what it receives."""

    def __init__(self, network: SmsNetwork, msisdn: str, changed: Callable[[], Awaitable[None]]):
        self.msisdn = msisdn
        self.received: list[NetworkSms] = []
        self._changed = changed
        network.attach(msisdn, self)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.received.append(sms)
        await self._changed()
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None


class HeldHandset(Handset):
    """A handset that takes no SMS until released: the network's status report for what it
    was sent comes only then, as late as a test wants."""

    def __init__(self, network: SmsNetwork, msisdn: str, changed: Callable[[], Awaitable[None]]):
        super().__init__(network, msisdn, changed)
        self.release = asyncio.Event()

    async def receive_sms(self, sms: NetworkSms) -> bool:
        await self.release.wait()
        return await super().receive_sms(sms)


class BarringCarrier(NetworkCarrier):
    """The simulated network refuses nothing at submit time; a modem does (+CMS ERROR for a
    barred number). This gives the contract a FAILED send to carry, with its error text."""

    def __init__(
        self,
        network: SmsNetwork,
        address: str,
        barred: frozenset[str],
        *,
        first_reference: int | None = None,
    ) -> None:
        super().__init__(network, address, modem=CARRIER_MODEM, first_reference=first_reference)
        self.barred = barred

    async def submit(self, sms: OutboundSms) -> None:
        if sms.to not in self.barred:
            await super().submit(sms)
            return
        self._events.put_nowait(
            SendResult(
                event_id=f"{self.address}:failed:{sms.message_id}",
                message_id=sms.message_id,
                status=SendStatus.FAILED,
                at=self.network.now(),
                recipient=sms.to,
                modem=self.modem,
                error="+CMS ERROR: 21 (short message transfer rejected)",
            )
        )


class AckWitness:
    """The gateway node as the bridge sees it, announcing each ack it applies: over MQTT an
    ack takes effect later than `Transport.ack` returns, and a test must know when."""

    def __init__(self, gateway: SpooledGateway, applied: Callable[[str], Awaitable[None]]):
        self._gateway = gateway
        self._applied = applied

    async def send(self, sms: OutboundSms) -> bool:
        return await self._gateway.send(sms)

    def events(self) -> AsyncIterator[TransportEvent]:
        return self._gateway.events()

    async def ack(self, event_id: str) -> None:
        await self.ack_many([event_id])

    async def ack_many(self, event_ids: Sequence[str]) -> None:
        await self._gateway.ack_many(event_ids)
        for event_id in event_ids:
            await self._applied(event_id)


class ContractHarness:
    """Use as `async with ContractHarness.in_process(...)` or `.over_mqtt(...)`."""

    def __init__(
        self, kind: str, spool_path: Path, settings: MqttSettings | None, redeliver_after: float
    ) -> None:
        self.kind = kind
        self._spool_path = spool_path
        self._settings = settings
        self._redeliver_after = redeliver_after
        self.network = SmsNetwork(seed=1)
        self.seen: list[TransportEvent] = []
        self.applied_acks: set[str] = set()
        self._changed = asyncio.Condition()
        self._stack = AsyncExitStack()
        self._node: AsyncExitStack | None = None
        self._pump: asyncio.Task[None] | None = None
        self._hub: MqttTransport | None = None
        self._gateway: SpooledGateway | None = None
        self.restarts = 0

    @classmethod
    def in_process(cls, spool_path: Path, redeliver_after: float) -> ContractHarness:
        return cls("in-process", spool_path, None, redeliver_after)

    @classmethod
    def over_mqtt(
        cls, spool_path: Path, settings: MqttSettings, redeliver_after: float
    ) -> ContractHarness:
        return cls("mqtt", spool_path, settings, redeliver_after)

    # -- life cycle ------------------------------------------------------------------------

    async def __aenter__(self) -> ContractHarness:
        try:
            await self._stack.enter_async_context(self.network)
            self._stack.push_async_callback(self._stop_node)
            if self._settings is not None:
                self._stack.push_async_callback(self._stop_hub)
                await self._start_hub()
            await self._start_node()
            if self._hub is not None:
                await self._guard("gateway online", self._hub.wait_for_gateway(GATEWAY))
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop_pump()
        await self._stack.aclose()

    async def restart_gateway(self) -> None:
        """Stops the gateway node and starts it again on the same spool file (a new process,
        as far as the node can tell). In process the hub's transport is the node, so the hub
        reconnects too; over MQTT the hub keeps its connection."""
        await self._stop_node()
        await self._start_node()
        self.restarts += 1

    async def restart_hub(self) -> None:
        """The hub's consumer goes away without acking and comes back: in process, a new
        `events()` on the same node; over MQTT, a new hub worker (a new `MqttTransport`)."""
        if self._hub is None:
            await self._stop_pump()
            self._start_pump(self.gateway)
        else:
            await self._stop_hub()
            await self._start_hub()

    async def _start_hub(self) -> None:
        assert self._settings is not None
        hub = MqttTransport(self._settings)
        await hub.__aenter__()
        self._hub = hub
        await self._guard("hub connects", hub.connected.wait())
        self._start_pump(hub)

    async def _stop_hub(self) -> None:
        await self._stop_pump()
        hub = self._hub
        if hub is not None:
            await hub.__aexit__(None, None, None)

    async def _start_node(self) -> None:
        node = AsyncExitStack()
        try:
            spool = await node.enter_async_context(Spool(self._spool_path))
            carrier = BarringCarrier(
                self.network,
                GATEWAY_SIM,
                frozenset({BARRED}),
                first_reference=await spool.next_reference(CARRIER_MODEM),
            )
            self._gateway = await node.enter_async_context(
                SpooledGateway(GATEWAY, carrier, spool, redeliver_after=self._redeliver_after)
            )
            if self._settings is None:
                self._start_pump(self._gateway)
            else:
                bridge = await node.enter_async_context(
                    GatewayBridge(
                        GATEWAY, AckWitness(self._gateway, self._ack_applied), self._settings
                    )
                )
                await self._guard("bridge connects", bridge.connected.wait())
        except BaseException:
            await node.aclose()
            raise
        self._node = node

    async def _stop_node(self) -> None:
        if self._settings is None:
            await self._stop_pump()  # it reads from the node about to stop
        node, self._node, self._gateway = self._node, None, None
        if node is not None:
            await node.aclose()

    def _start_pump(self, transport: Transport) -> None:
        async def pump() -> None:
            async for event in transport.events():
                self.seen.append(event)
                await self._notify()

        self._pump = asyncio.create_task(pump(), name=f"contract-pump-{self.kind}")

    async def _stop_pump(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    # -- what a test uses ------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The hub's transport now (in process, a new one after each restart)."""
        if self._hub is not None:
            return self._hub
        assert self._gateway is not None, "the gateway node is not running"
        return self._gateway

    @property
    def gateway(self) -> SpooledGateway:
        assert self._gateway is not None, "the gateway node is not running"
        return self._gateway

    def handset(self, msisdn: str) -> Handset:
        return Handset(self.network, msisdn, self._notify)

    def held_handset(self, msisdn: str) -> HeldHandset:
        return HeldHandset(self.network, msisdn, self._notify)

    def sms_from_network(
        self, sender: str, *, text: str | None = None, data: bytes | None = None
    ) -> None:
        """A handset or meter sends an SMS to the gateway's number."""
        self.network.submit(sender, GATEWAY_SIM, text=text, data=data)

    def with_id(self, event_id: str) -> list[TransportEvent]:
        return [event for event in self.seen if event.event_id == event_id]

    async def ack(self, event_id: str) -> None:
        """Acks a delivered event and returns once the gateway has applied the ack."""
        await self.transport.ack(event_id)
        if self._hub is None:
            self.applied_acks.add(event_id)  # the spool row is gone when ack returns
        else:
            await self.wait_for(f"ack of {event_id} applied", lambda: event_id in self.applied_acks)

    async def wait_for(
        self, label: str, condition: Callable[[], bool], limit: float = DEADLINE
    ) -> None:
        async def waited() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)

        await self._guard(label, waited(), limit)

    async def first(
        self, kind: type[E], label: str, where: Callable[[E], bool] = lambda _: True
    ) -> E:
        """The first event of `kind` the hub got that matches, waiting for one if need be."""

        def matching() -> list[E]:
            return [e for e in self.seen if isinstance(e, kind) and where(e)]

        await self.wait_for(label, lambda: bool(matching()))
        return matching()[0]

    async def result_of(self, message_id: str) -> SendResult:
        """The first SendResult the hub got for `message_id`."""
        return await self.first(
            SendResult, f"send result of {message_id}", lambda e: e.message_id == message_id
        )

    async def _ack_applied(self, event_id: str) -> None:
        self.applied_acks.add(event_id)
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _guard(self, label: str, step: Awaitable[object], limit: float = DEADLINE) -> None:
        try:
            await asyncio.wait_for(step, limit)
        except TimeoutError:
            for task in asyncio.all_tasks():
                task.print_stack(limit=6, file=sys.stderr)
            seen = [event.event_id for event in self.seen]
            pytest.fail(f"[{self.kind}] {label}: not within {limit} s; the hub saw {seen}")
