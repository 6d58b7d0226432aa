"""The simulated SMSC: routes messages between attached endpoints with configurable
delay, loss, duplication and reordering (seeded), and returns status reports on request."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from gateway.pdu import Concat, Encoding
from meter_sim.network.messages import Endpoint, NetworkSms, NetworkStatusReport

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]

STATUS_DELIVERED = 0x00
STATUS_UNKNOWN_RECIPIENT = 0x41  # permanent: incompatible destination
STATUS_NOT_DELIVERED = 0x46  # permanent: SM validity period expired (gave up retrying)


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    """Delays in seconds; rates are probabilities per message."""

    min_delay: float = 0.0
    max_delay: float = 0.0
    loss_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    reorder_extra_delay: float = 2.0
    retry_interval: float = 5.0
    max_attempts: int = 10


class UnknownEndpointError(KeyError):
    pass


class SmsNetwork:
    """Use as `async with SmsNetwork(profile, seed=1) as network:`; pending deliveries are
    cancelled on exit. `sleep` and `clock` are injectable so tests never wait."""

    def __init__(
        self,
        profile: NetworkProfile | None = None,
        *,
        seed: int = 0,
        smsc_address: str = "+62811000000",
        sleep: Sleep = asyncio.sleep,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.profile = profile or NetworkProfile()
        self.smsc_address = smsc_address
        self._random = random.Random(seed)
        self._sleep = sleep
        self._clock = clock
        self._endpoints: dict[str, Endpoint] = {}
        self._aliases: dict[str, list[str]] = {}
        self._presented_as: dict[str, str] = {}
        self._alias_turn = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    async def __aenter__(self) -> SmsNetwork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def attach(self, msisdn: str, endpoint: Endpoint) -> None:
        self._endpoints[msisdn] = endpoint

    def detach(self, msisdn: str) -> None:
        self._endpoints.pop(msisdn, None)

    def alias(self, number: str, targets: list[str], *, present_as_alias: bool = False) -> None:
        """Routes SMS for `number` (e.g. a short code 8ABCD) to the target MSISDNs in turn,
        as an operator routes a short code to the lines of the service behind it. With
        `present_as_alias`, SMS the lines send are presented with `number` as their sender
        (the service's identity, as for SMS sent from a short code); status reports still go
        back to the line that sent."""
        self._aliases[number] = list(targets)
        if present_as_alias:
            for target in targets:
                self._presented_as[target] = number

    def _route(self, recipient: str) -> str:
        targets = self._aliases.get(recipient)
        if not targets:
            return recipient
        return targets[next(self._alias_turn) % len(targets)]

    def now(self) -> datetime:
        return self._clock()

    def submit(
        self,
        sender: str,
        recipient: str,
        *,
        text: str | None = None,
        data: bytes | None = None,
        concat: Concat | None = None,
        report_reference: int | None = None,
        encoding: Encoding | None = None,
    ) -> NetworkSms:
        """Accept a message for delivery; with `report_reference` (the sender's TP-MR) a
        status report goes back to the sender once the outcome is known."""
        presented = self._presented_as.get(sender, sender)
        sms = NetworkSms(
            next(self._ids), presented, recipient, text, data, concat, self._clock(), encoding
        )
        copies = 0 if self._random.random() < self.profile.loss_rate else 1
        if copies and self._random.random() < self.profile.duplicate_rate:
            copies = 2
        for copy in range(copies):
            self._spawn(self._deliver(sms, report_reference if copy == 0 else None, sender))
        return sms

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _delay(self) -> float:
        delay = self._random.uniform(self.profile.min_delay, self.profile.max_delay)
        if self._random.random() < self.profile.reorder_rate:
            delay += self.profile.reorder_extra_delay
        return delay

    async def _deliver(self, sms: NetworkSms, report_reference: int | None, origin: str) -> None:
        delay = self._delay()
        if delay:
            await self._sleep(delay)
        status = STATUS_NOT_DELIVERED
        for attempt in range(self.profile.max_attempts):
            endpoint = self._endpoints.get(self._route(sms.recipient))
            if endpoint is None:
                status = STATUS_UNKNOWN_RECIPIENT
                break
            if await endpoint.receive_sms(sms):
                status = STATUS_DELIVERED
                break
            if attempt + 1 < self.profile.max_attempts:
                await self._sleep(self.profile.retry_interval)
        if report_reference is None:
            return
        sender = self._endpoints.get(origin)
        if sender is not None:
            await sender.receive_status_report(
                NetworkStatusReport(
                    sms.recipient, report_reference, status, sms.submitted_at, self._clock()
                )
            )


class EchoEndpoint:
    """Answers every message with the same content (part by part, same concatenation)."""

    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        self.network = network
        self.msisdn = msisdn
        self.received: list[NetworkSms] = []
        network.attach(msisdn, self)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.received.append(sms)
        self.network.submit(
            self.msisdn,
            sms.sender,
            text=sms.text,
            data=sms.data,
            concat=sms.concat,
            encoding=sms.encoding,
        )
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None
