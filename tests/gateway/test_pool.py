"""The modem pool over several scripted devices on real ptys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from gateway.at.config import ModemConfig
from gateway.at.events import InboundSms as StoredSms
from gateway.pdu import Concat, encode_deliver, encode_status_report
from gateway.pool import ModemPool, PoolConfig
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    ModemStateChanged,
    ModemStatus,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)
from tests.gateway.at_device import AtDevice, tpdu_length
from tests.gateway.test_at_modem import fast_config

pytestmark = pytest.mark.timeout(20)

WAIT = 5.0
WHEN = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
METER = "+6281234567890"
E = TypeVar("E")

FAST = PoolConfig(
    min_interval=0,
    busy_backoff=0,
    retry_delay=0,
    avoid_for=60,
    reprobe_initial=0.05,
    reprobe_max=0.05,
    reassembly_timeout=60,
    reassembly_check_interval=3600,
)


class Stored:
    def __init__(self) -> None:
        self.items: list[StoredSms] = []

    async def __call__(self, sms: StoredSms) -> None:
        self.items.append(sms)


class Rig:
    def __init__(self, devices: list[AtDevice], pool: ModemPool) -> None:
        self.devices = devices
        self.pool = pool
        self.seen: list[TransportEvent] = []
        self._events = pool.events()

    async def next(self, kind: type[E], where: Callable[[E], bool] = lambda _: True) -> E:
        async def find() -> E:
            while True:
                event = await anext(self._events)
                self.seen.append(event)
                if isinstance(event, kind) and where(event):
                    return event

        return await asyncio.wait_for(find(), WAIT)

    async def result(self, message_id: str) -> SendResult:
        return await self.next(SendResult, lambda r: r.message_id == message_id)


async def started(
    stack: AsyncExitStack, count: int, config: PoolConfig = FAST, **modem: object
) -> Rig:
    devices = [await stack.enter_async_context(AtDevice()) for _ in range(count)]
    configs = [fast_config(d, name=f"m{i}", **modem) for i, d in enumerate(devices)]
    pool = await stack.enter_async_context(ModemPool(configs, persist=Stored(), config=config))
    for device in devices:
        await device.wait_for(r"AT\+CMGL=4")
    return Rig(devices, pool)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


def sms(n: int, text: str = "token") -> OutboundSms:
    return OutboundSms(message_id=f"msg-{n}", to=METER, text=f"{text} {n}")


def held(device: AtDevice) -> None:
    """The device takes the PDU but answers only when the test says so (a slow network)."""
    device.on(r"[0-9A-F]+\x1a", [])


async def test_every_healthy_modem_is_kept_busy(stack: AsyncExitStack) -> None:
    rig = await started(stack, 2)
    slow, fast = rig.devices
    held(slow)
    for n in range(4):
        assert await rig.pool.send(sms(n))
    # One message sits on the slow modem; the other three go out through the fast one.
    results = [await rig.next(SendResult) for _ in range(3)]
    assert {r.modem for r in results} == {"m1"}
    assert len(fast.sent_pdus) == 3
    assert len(slow.matching(r"[0-9A-F]+\x1a")) == 1
    slow.unsolicited("+CMGS: 200", "OK")
    late = await rig.next(SendResult)
    assert (late.modem, late.message_references, late.status) == ("m0", (200,), SendStatus.SENT)
    assert sorted(r.message_id for r in [*results, late]) == [f"msg-{n}" for n in range(4)]


async def test_one_sms_at_a_time_per_modem_with_parts_in_order(stack: AsyncExitStack) -> None:
    rig = await started(stack, 1)
    (device,) = rig.devices
    assert await rig.pool.send(sms(1, "x" * 200))  # two parts
    assert await rig.pool.send(sms(2))
    first, second = await rig.result("msg-1"), await rig.result("msg-2")
    assert first.message_references == (0, 1)
    assert second.message_references == (2,)
    # Each AT+CMGS waited for the previous one's answer: strictly alternating dialogue.
    sends = [c for c in device.commands if c.startswith("AT+CMGS") or c.endswith("\x1a")]
    assert [c.startswith("AT+CMGS") for c in sends] == [True, False] * 3


async def first_to_receive_a_pdu(devices: list[AtDevice]) -> int:
    waits = [asyncio.ensure_future(d.wait_for(r"[0-9A-F]+\x1a")) for d in devices]
    done, pending = await asyncio.wait(waits, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return next(i for i, task in enumerate(waits) if task in done)


async def test_network_error_is_retried_on_another_modem(stack: AsyncExitStack) -> None:
    rig = await started(stack, 2)
    for device in rig.devices:
        held(device)
    assert await rig.pool.send(sms(0))
    busy_index = await first_to_receive_a_pdu(rig.devices)
    busy, broken = rig.devices[busy_index], rig.devices[1 - busy_index]
    broken.on(r"[0-9A-F]+\x1a", ["+CMS ERROR: 331"])
    assert await rig.pool.send(sms(1))  # only the broken modem is free
    await broken.wait_for(r"[0-9A-F]+\x1a")
    busy.on(r"[0-9A-F]+\x1a", ["+CMGS: 9", "OK"])
    busy.unsolicited("+CMGS: 8", "OK")  # msg-0 done: that modem is free again
    result = await rig.result("msg-1")
    assert (result.status, result.modem, result.attempts) == (
        SendStatus.SENT,
        f"m{busy_index}",
        2,
    )
    assert result.message_references == (9,)
    assert len(broken.matching(r"[0-9A-F]+\x1a")) == 1  # avoided, not hammered


async def test_permanent_error_fails_without_retry(stack: AsyncExitStack) -> None:
    rig = await started(stack, 2)
    for device in rig.devices:
        device.on(r"[0-9A-F]+\x1a", ["+CMS ERROR: 304"])
    await rig.pool.send(sms(0))
    result = await rig.result("msg-0")
    assert (result.status, result.attempts) == (SendStatus.FAILED, 1)
    assert result.error is not None and result.error.startswith("rejected")


async def test_unknown_error_is_retried_a_few_times_then_fails(stack: AsyncExitStack) -> None:
    rig = await started(stack, 1)
    (device,) = rig.devices
    device.on(r"[0-9A-F]+\x1a", ["+CMS ERROR: 500"])
    await rig.pool.send(sms(0))
    result = await rig.result("msg-0")
    assert (result.status, result.attempts) == (SendStatus.FAILED, FAST.unknown_attempts)
    assert len(device.matching(r"[0-9A-F]+\x1a")) == FAST.unknown_attempts


async def test_duplicate_message_id_is_sent_once(stack: AsyncExitStack) -> None:
    rig = await started(stack, 1)
    assert await rig.pool.send(sms(0))
    assert await rig.pool.send(sms(0))
    await rig.result("msg-0")
    assert await rig.pool.send(sms(1))
    await rig.result("msg-1")
    assert len(rig.devices[0].sent_pdus) == 2


async def test_hung_modem_is_reset_and_its_message_sent_elsewhere(stack: AsyncExitStack) -> None:
    rig = await started(stack, 2, prompt_timeout=0.2)
    for device in rig.devices:
        held(device)
    assert await rig.pool.send(sms(0))
    good_index = await first_to_receive_a_pdu(rig.devices)
    good, hung = rig.devices[good_index], rig.devices[1 - good_index]
    hung_name = f"m{1 - good_index}"
    hung.hang()
    assert await rig.pool.send(sms(1))  # only the hanging modem is free: it times out
    await rig.next(
        ModemStateChanged, lambda e: e.modem == hung_name and e.status is ModemStatus.HUNG
    )
    good.on(r"[0-9A-F]+\x1a", ["+CMGS: 5", "OK"])
    good.unsolicited("+CMGS: 4", "OK")
    result = await rig.result("msg-1")
    assert (result.status, result.modem) == (SendStatus.SENT, f"m{good_index}")
    assert result.message_references == (5,)
    # The supervisor reset the hung modem and it is back in service.
    await rig.next(
        ModemStateChanged, lambda e: e.modem == hung_name and e.status is ModemStatus.READY
    )
    assert hung.resets == 1
    assert hung.matching(r"AT\+CFUN=1,1") == ["AT+CFUN=1,1"]
    assert rig.pool.modems[hung_name].value == "ready"


async def test_out_of_service_modem_is_reprobed_until_it_works(stack: AsyncExitStack) -> None:
    devices = [await stack.enter_async_context(AtDevice()) for _ in range(2)]
    no_sim, good = devices
    no_sim.on(r"AT\+CPIN\?", ["+CME ERROR: 10"])
    configs = [fast_config(d, name=f"m{i}") for i, d in enumerate(devices)]
    pool = await stack.enter_async_context(ModemPool(configs, persist=Stored(), config=FAST))
    rig = Rig(devices, pool)
    assert pool.modems["m0"].value == "out-of-service"
    assert await pool.send(sms(0))
    assert (await rig.result("msg-0")).modem == "m1"
    await no_sim.wait_for(r"AT\+CPIN\?", 2)  # re-probed after the back-off
    no_sim.on(r"AT\+CPIN\?", ["+CPIN: READY", "OK"])  # the SIM was inserted
    await rig.next(ModemStateChanged, lambda e: e.modem == "m0" and e.status is ModemStatus.READY)
    held(good)  # the good modem can take at most one of the next two: m0 sends the other
    assert await pool.send(sms(1))
    assert await pool.send(sms(2))
    result = await rig.next(SendResult)
    assert (result.modem, result.status) == ("m0", SendStatus.SENT)


async def test_multipart_inbound_across_modems_and_status_report(stack: AsyncExitStack) -> None:
    rig = await started(stack, 2)
    a, b = rig.devices
    parts = [
        encode_deliver(METER, text=f"<{seq}>", timestamp=WHEN, concat=Concat(3, 3, seq))
        for seq in (1, 2, 3)
    ]
    a.deliver(parts[2])
    b.deliver(parts[0])
    a.deliver(parts[0])  # a duplicate
    b.deliver(parts[1])
    message = await rig.next(InboundSms)
    assert (message.sender, message.text, message.complete) == (METER, "<1><2><3>", True)
    assert len(message.raw_pdus) == 3
    assert a.storage == {} and b.storage == {}

    report = encode_status_report(
        METER, message_reference=17, status=0, submitted=WHEN, discharged=WHEN
    )
    b.unsolicited(f"+CDS: {tpdu_length(report)}", report)
    delivery = await rig.next(DeliveryReport)
    assert (delivery.modem, delivery.message_reference, delivery.recipient) == ("m1", 17, METER)
    assert delivery.delivered and delivery.message_id is None


def test_pool_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        ModemPool([ModemConfig("/dev/x"), ModemConfig("/dev/x")], persist=Stored())


class GatedSleep:
    """Records the waits the pool asks for and lets each end only when the test says so."""

    def __init__(self) -> None:
        self.requested: asyncio.Queue[float] = asyncio.Queue()
        self._gate = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.requested.put_nowait(seconds)
        await self._gate.wait()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()


async def test_per_modem_rate_limit(stack: AsyncExitStack) -> None:
    device = await stack.enter_async_context(AtDevice())
    sleep = GatedSleep()
    config = PoolConfig(min_interval=30, reprobe_initial=3600, reassembly_check_interval=3600)
    pool = await stack.enter_async_context(
        ModemPool([fast_config(device, name="m0")], persist=Stored(), config=config, sleep=sleep)
    )
    rig = Rig([device], pool)
    await pool.send(sms(0))
    await rig.result("msg-0")
    await pool.send(sms(1))
    waited = await asyncio.wait_for(sleep.requested.get(), WAIT)
    assert 0 < waited <= 30  # what is left of the interval since msg-0 started
    assert len(device.sent_pdus) == 1  # msg-1 waits for the modem's next slot
    sleep.release()
    assert (await rig.result("msg-1")).status is SendStatus.SENT
    assert len(device.sent_pdus) == 2
