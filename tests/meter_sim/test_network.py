"""The simulated SMSC: routing, delays, loss, duplication, reordering, status reports."""

from __future__ import annotations

import asyncio

import pytest

from meter_sim.network import (
    STATUS_DELIVERED,
    STATUS_NOT_DELIVERED,
    STATUS_UNKNOWN_RECIPIENT,
    EchoEndpoint,
    NetworkProfile,
    NetworkSms,
    NetworkStatusReport,
    SmsNetwork,
)

pytestmark = pytest.mark.timeout(10)


class Phone:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.inbox: asyncio.Queue[NetworkSms] = asyncio.Queue()
        self.reports: asyncio.Queue[NetworkStatusReport] = asyncio.Queue()
        self.refusals = 0
        self.refused = asyncio.Event()

    async def receive_sms(self, sms: NetworkSms) -> bool:
        if not self.accept:
            self.refusals += 1
            self.refused.set()
            return False
        await self.inbox.put(sms)
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        await self.reports.put(report)


class RecordedSleep:
    """Stands in for asyncio.sleep: records the delays, yields once, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


async def test_routes_and_reports_delivery() -> None:
    async with SmsNetwork() as network:
        alice, bob = Phone(), Phone()
        network.attach("+6281100000001", alice)
        network.attach("+6281100000002", bob)
        network.submit("+6281100000001", "+6281100000002", text="hai", report_reference=7)
        sms = await bob.inbox.get()
        assert (sms.sender, sms.text) == ("+6281100000001", "hai")
        report = await alice.reports.get()
        assert (report.recipient, report.message_reference, report.status) == (
            "+6281100000002",
            7,
            STATUS_DELIVERED,
        )


async def test_delay_comes_from_the_profile_and_injected_sleep() -> None:
    sleep = RecordedSleep()
    profile = NetworkProfile(min_delay=3.0, max_delay=4.0)
    async with SmsNetwork(profile, seed=5, sleep=sleep) as network:
        bob = Phone()
        network.attach("+62812", bob)
        network.submit("+62811", "+62812", text="x")
        await bob.inbox.get()
    assert len(sleep.delays) == 1
    assert 3.0 <= sleep.delays[0] <= 4.0


async def _deliveries(profile: NetworkProfile, seed: int, count: int) -> list[int]:
    async with SmsNetwork(profile, seed=seed, sleep=RecordedSleep()) as network:
        bob = Phone()
        network.attach("+62812", bob)
        for n in range(count):
            network.submit("+62811", "+62812", text=str(n))
        for _ in range(50):
            await asyncio.sleep(0)
        received = []
        while not bob.inbox.empty():
            received.append(int((await bob.inbox.get()).text or "0"))
        return received


async def test_loss_and_duplication_are_seeded() -> None:
    lossy = NetworkProfile(loss_rate=0.5)
    first = await _deliveries(lossy, seed=1, count=40)
    assert 5 < len(first) < 35
    assert first == await _deliveries(lossy, seed=1, count=40)
    doubled = await _deliveries(NetworkProfile(duplicate_rate=1.0), seed=1, count=10)
    assert sorted(doubled) == sorted(list(range(10)) * 2)


async def test_reordering_lets_later_messages_overtake() -> None:
    profile = NetworkProfile(reorder_rate=0.5, reorder_extra_delay=10.0)
    sleep_calls: list[float] = []
    order: list[str] = []

    async def sleep(seconds: float) -> None:  # a virtual clock: longer sleeps finish later
        sleep_calls.append(seconds)
        for _ in range(int(seconds) + 1):
            await asyncio.sleep(0)

    async with SmsNetwork(profile, seed=3, sleep=sleep) as network:
        bob = Phone()
        network.attach("+62812", bob)
        for n in range(12):
            network.submit("+62811", "+62812", text=str(n))
        for _ in range(12):
            order.append((await bob.inbox.get()).text or "")
    assert sorted(order, key=int) == [str(n) for n in range(12)]
    assert order != sorted(order, key=int)


async def test_unknown_recipient_and_full_storage_give_failure_reports() -> None:
    profile = NetworkProfile(retry_interval=60.0, max_attempts=3)
    sleep = RecordedSleep()
    async with SmsNetwork(profile, sleep=sleep) as network:
        alice, full = Phone(), Phone(accept=False)
        network.attach("+62811", alice)
        network.attach("+62813", full)
        network.submit("+62811", "+62899", text="x", report_reference=1)
        assert (await alice.reports.get()).status == STATUS_UNKNOWN_RECIPIENT
        network.submit("+62811", "+62813", text="x", report_reference=2)
        report = await alice.reports.get()
        assert (report.message_reference, report.status) == (2, STATUS_NOT_DELIVERED)
        assert full.refusals == 3
        assert sleep.delays == [60.0, 60.0]


async def test_storage_freed_before_the_retry_gets_the_message() -> None:
    async with SmsNetwork(NetworkProfile(retry_interval=1.0), sleep=RecordedSleep()) as network:
        bob = Phone(accept=False)
        network.attach("+62812", bob)
        network.submit("+62811", "+62812", text="later")
        await bob.refused.wait()
        bob.accept = True
        assert (await bob.inbox.get()).text == "later"


async def test_echo_answers_with_the_same_text() -> None:
    async with SmsNetwork() as network:
        alice = Phone()
        network.attach("+62811", alice)
        EchoEndpoint(network, "+62899")
        network.submit("+62811", "+62899", text="ping €")
        reply = await alice.inbox.get()
        assert (reply.sender, reply.text) == ("+62899", "ping €")


async def test_a_short_code_alias_spreads_sms_over_its_lines() -> None:
    all_in = asyncio.Event()

    class Inbox:
        def __init__(self) -> None:
            self.got: list[NetworkSms] = []

        async def receive_sms(self, sms: NetworkSms) -> bool:
            self.got.append(sms)
            if sum(len(line.got) for line in lines) == 4:
                all_in.set()
            return True

        async def receive_status_report(self, report: NetworkStatusReport) -> None:
            return None

    lines = [Inbox(), Inbox()]
    async with SmsNetwork(seed=1) as network:
        network.attach("+6281200000001", lines[0])
        network.attach("+6281200000002", lines[1])
        network.alias("87000", ["+6281200000001", "+6281200000002"])
        for n in range(4):
            network.submit("+6281399999999", "87000", text=f"SALDO {n}")
        await all_in.wait()
    assert [len(line.got) for line in lines] == [2, 2]
    assert all(sms.recipient == "87000" for line in lines for sms in line.got)


async def test_lines_behind_an_alias_can_send_as_the_alias() -> None:
    got: list[NetworkSms] = []
    reports: list[NetworkStatusReport] = []
    done = asyncio.Event()
    reported = asyncio.Event()

    class Endpoint:
        def __init__(self, name: str) -> None:
            self.name = name

        async def receive_sms(self, sms: NetworkSms) -> bool:
            got.append(sms)
            done.set()
            return True

        async def receive_status_report(self, report: NetworkStatusReport) -> None:
            reports.append(report)
            reported.set()

    async with SmsNetwork(seed=1) as network:
        network.attach("+6281200000001", Endpoint("line"))
        network.attach("+6281399999999", Endpoint("customer"))
        network.alias("87000", ["+6281200000001"], present_as_alias=True)
        network.submit("+6281200000001", "+6281399999999", text="Token Anda", report_reference=7)
        await done.wait()
        await reported.wait()
    assert got[0].sender == "87000"
    assert reports[0].message_reference == 7
