"""A minimal hub side for meter tests: the real frames Endpoint (role HUB) on the network."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from firmware_protocol.frames import (
    Endpoint,
    FrameError,
    Message,
    Received,
    Role,
    peek,
    to_binary,
    to_text,
)
from meter_sim.meter.simulated import MeterIdentity
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork


class SimHub:
    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        self.network = network
        self.msisdn = msisdn
        self.endpoints: dict[str, Endpoint] = {}
        self.msisdns: dict[str, str] = {}
        self.received: list[Received] = []
        self.errors: list[FrameError] = []
        self.raw: list[NetworkSms] = []
        self._changed = asyncio.Condition()
        self._message_id = 100
        network.attach(msisdn, self)

    def add(self, identity: MeterIdentity) -> Endpoint:
        endpoint = Endpoint(
            role=Role.HUB,
            meter_number=identity.meter_number,
            keys=identity.comms_keys,
            key_id=identity.comms_key_id,
        )
        self.endpoints[identity.meter_number] = endpoint
        self.msisdns[identity.meter_number] = identity.msisdn
        return endpoint

    def seal(self, meter_number: str, message: Message, *, message_id: int | None = None) -> bytes:
        if message_id is None:
            self._message_id += 1
            message_id = self._message_id
        (frame,) = self.endpoints[meter_number].seal(message, message_id=message_id)
        return frame

    def send_frame(self, meter_number: str, frame: bytes, *, text: bool = False) -> None:
        recipient = self.msisdns[meter_number]
        if text:
            self.network.submit(self.msisdn, recipient, text=to_text(frame))
        else:
            self.network.submit(self.msisdn, recipient, data=frame)

    def send(self, meter_number: str, message: Message, *, text: bool = False) -> bytes:
        frame = self.seal(meter_number, message)
        self.send_frame(meter_number, frame, text=text)
        return frame

    def messages(self, kind: type[Message] | None = None) -> list[Message]:
        return [r.message for r in self.received if kind is None or isinstance(r.message, kind)]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.raw.append(sms)
        try:
            raw: bytes | str = sms.data if sms.data is not None else (sms.text or "")
            endpoint = self.endpoints[peek(to_binary(raw)).meter_number]
            received = endpoint.receive(raw)
            if received is not None:
                self.received.append(received)
        except FrameError as error:
            self.errors.append(error)
        async with self._changed:
            self._changed.notify_all()
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None
