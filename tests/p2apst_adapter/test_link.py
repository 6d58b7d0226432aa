"""The client against the simulator over real TCP on 127.0.0.1, on every path."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from firmware_protocol import sts
from p2apst_adapter import messages
from p2apst_adapter.client import (
    ClientSettings,
    JournalEntry,
    Link,
    P2apstClient,
    SqliteStore,
)
from p2apst_adapter.dialect import TOKEN_REPORT, Framing, Mti, ResponseCode
from p2apst_adapter.model import WIB, PurchaseRequest, PurchaseState, TokenReason, TokenReport
from p2apst_adapter.simulator import Fault, P2apstSimulator, SimulatorSettings, demo_meters

pytestmark = pytest.mark.timeout(20)

METERS = demo_meters(3)
METER = METERS[1]  # 1300 VA, R1
#: Answers are expected within these; a test that needs one to expire (a scripted fault)
#: shortens the timeout it relies on to SHORT.
SHORT = 0.2
FAST = ClientSettings(
    connect_timeout=2.0,
    response_timeout=5.0,
    advice_timeout=5.0,
    advice_interval=0.0,
    echo_interval=30.0,
    reconnect_initial=0.01,
    reconnect_max=0.05,
    report_retry_interval=0.01,
)


@pytest.fixture
async def sim() -> AsyncIterator[P2apstSimulator]:
    async with P2apstSimulator(METERS, seed=7) as simulator:
        yield simulator


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "journal.sqlite") as opened:
        yield opened


def client_for(sim: P2apstSimulator, store: SqliteStore, **changes: Any) -> P2apstClient:
    settings = dataclasses.replace(FAST, **changes)
    return P2apstClient(
        "127.0.0.1", sim.port, journal=store.journal, outbox=store.outbox, settings=settings
    )


def request(key: str = "REF-0001", amount: int = 100_000) -> PurchaseRequest:
    return PurchaseRequest(
        switcher_reference=key,
        meter_number=METER.meter_number,
        customer_id=METER.customer_id,
        amount=Decimal(amount),
        admin_fee=Decimal(2500),
    )


def assert_token_for(token: str | None, kwh: Decimal | None) -> None:
    assert token is not None and kwh is not None
    decoded = sts.decode(token, METER.decoder_key())
    assert decoded.crc_ok
    assert decoded.fields.amount_kwh == kwh


async def test_inquiry_then_purchase(sim: P2apstSimulator, store: SqliteStore) -> None:
    async with client_for(sim, store) as client:
        found = await client.inquiry(meter_number=METER.meter_number)
        assert found.found
        assert (found.customer_id, found.customer_name) == (METER.customer_id, "SITI RAHAYU")
        assert found.power_va == 1300 and found.tariff == "R1"
        result = await client.purchase(
            PurchaseRequest.from_inquiry(found, Decimal(100_000), "REF-INQ-1")
        )
    assert result.paid and not result.via_advice
    assert result.response_code == ResponseCode.SUCCESS
    assert_token_for(result.token, result.kwh)
    assert result.power_purchase is not None and result.ppj is not None
    assert result.power_purchase + result.ppj + Decimal(2500) == Decimal(100_000)
    [paid] = sim.ledger.paid()
    assert (paid.switcher_reference, paid.token) == ("REF-INQ-1", result.token)
    stored = await store.journal.get("REF-INQ-1")
    assert stored is not None and stored.result == result


async def test_inquiry_for_unknown_meter(sim: P2apstSimulator, store: SqliteStore) -> None:
    async with client_for(sim, store) as client:
        found = await client.inquiry(meter_number="99999999999")
    assert found.response_code == ResponseCode.UNKNOWN_METER and not found.found


async def test_latency_below_the_timeout_is_just_slow(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    sim.script.push(Fault.latency(0.05), Mti.PURCHASE_REQUEST)
    async with client_for(sim, store, response_timeout=2.0) as client:
        result = await client.purchase(request())
    assert result.paid and not result.via_advice
    assert sim.received(Mti.ADVICE) == 0


async def test_no_answer_is_chased_with_an_advice(sim: P2apstSimulator, store: SqliteStore) -> None:
    sim.script.push(Fault.no_answer(), Mti.PURCHASE_REQUEST)
    async with client_for(sim, store, response_timeout=SHORT) as client:
        result = await client.purchase(request())
    assert result.paid and result.via_advice
    [paid] = sim.ledger.paid()
    assert paid.token == result.token
    assert_token_for(result.token, result.kwh)
    assert (sim.received(Mti.PURCHASE_REQUEST), sim.received(Mti.ADVICE)) == (1, 1)


async def test_unanswered_advice_is_repeated_with_2221(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    sim.script.push(Fault.no_answer(), Mti.PURCHASE_REQUEST)
    sim.script.push(Fault.no_answer(), Mti.ADVICE)
    sim.script.push(Fault.no_answer(), Mti.ADVICE_REPEAT)
    async with client_for(sim, store, response_timeout=SHORT, advice_timeout=0.5) as client:
        result = await client.purchase(request())
    assert result.paid and result.token == sim.ledger.paid()[0].token
    assert sim.received(Mti.ADVICE) == 1
    assert sim.received(Mti.ADVICE_REPEAT) == 2


async def test_late_answer_is_ignored_and_the_advice_gets_the_token(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    sim.script.push(Fault.late(), Mti.PURCHASE_REQUEST)  # released when the advice arrives
    async with client_for(sim, store, response_timeout=SHORT) as client:
        result = await client.purchase(request())
        assert await client.purchase(request()) == result
    assert result.paid and result.via_advice
    assert result.token == sim.ledger.paid()[0].token
    assert sim.received(Mti.PURCHASE_REQUEST) == 1


async def test_dropped_connection_reconnects_and_sends_an_advice(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    sim.script.push(Fault.drop(), Mti.PURCHASE_REQUEST)  # paid, then the line goes dead
    async with client_for(sim, store) as client:
        result = await client.purchase(request())
        assert client.sign_ons == 2
    assert sim.connections_accepted == 2
    assert result.paid and result.via_advice
    assert [entry.token for entry in sim.ledger.paid()] == [result.token]


@pytest.mark.parametrize("code", [ResponseCode.INSUFFICIENT_DEPOSIT, ResponseCode.CUSTOMER_BLOCKED])
async def test_error_codes_decline_without_a_token(
    sim: P2apstSimulator, store: SqliteStore, code: ResponseCode
) -> None:
    sim.script.push(Fault.error(code), Mti.PURCHASE_REQUEST)
    async with client_for(sim, store) as client:
        result = await client.purchase(request())
        again = await client.purchase(request())
    assert result.state is PurchaseState.DECLINED
    assert (result.response_code, result.token) == (code, None)
    assert again == result
    assert sim.ledger.paid() == []
    assert sim.received(Mti.PURCHASE_REQUEST) == 1


async def test_validation_errors_from_the_simulator(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    async with client_for(sim, store) as client:
        low = await client.purchase(request("LOW", amount=5_000))
        unknown = await client.purchase(
            PurchaseRequest("UNKNOWN", "99999999999", Decimal(50_000), admin_fee=Decimal(2500))
        )
    assert low.response_code == ResponseCode.BELOW_MINIMUM
    assert unknown.response_code == ResponseCode.UNKNOWN_METER


async def test_crash_between_send_and_answer_resumes_with_an_advice(
    sim: P2apstSimulator, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite"
    sim.script.push(Fault.no_answer(), Mti.PURCHASE_REQUEST)
    async with SqliteStore(path) as store:
        client = client_for(sim, store, response_timeout=30.0)
        await client.__aenter__()
        purchase = asyncio.create_task(client.purchase(request()))
        await sim.wait_received(Mti.PURCHASE_REQUEST)
        await client.close()  # the process dies: no answer was ever recorded
        purchase.cancel()
        with pytest.raises(asyncio.CancelledError):
            await purchase
        [pending] = await store.journal.pending()
        assert pending.key == "REF-0001"
    async with SqliteStore(path) as store, client_for(sim, store) as client:
        [resumed] = await client.wait_resumed()
        assert resumed.paid and resumed.via_advice
        assert await client.purchase(request()) == resumed
        assert await store.journal.pending() == []
    [paid] = sim.ledger.paid()
    assert paid.token == resumed.token
    assert sim.received(Mti.PURCHASE_REQUEST) == 1
    assert sim.received(Mti.ADVICE) == 1


async def test_with_resume_off_a_pending_purchase_waits_for_its_owner_to_drive_it(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    """The hub runs its client with `resume_pending` off: its own sweep is the one resumer
    and drives the purchase through `purchase()`, which chases the journalled 2200."""
    sim.script.push(Fault.no_answer(), Mti.PURCHASE_REQUEST)
    first = client_for(sim, store, response_timeout=30.0)
    await first.__aenter__()
    purchase = asyncio.create_task(first.purchase(request()))
    await sim.wait_received(Mti.PURCHASE_REQUEST)
    await first.close()  # the process dies: no answer was ever recorded
    purchase.cancel()
    with pytest.raises(asyncio.CancelledError):
        await purchase
    [pending] = await store.journal.pending()
    async with client_for(sim, store, resume_pending=False) as client:
        assert await client.wait_resumed() == []
        await client.wait_connected()
        assert sim.received(Mti.ADVICE) == 0  # entering chased nothing
        result = await client.purchase(pending.request)  # as the hub's sweep does
    assert result.paid and result.via_advice
    assert sim.received(Mti.ADVICE) == 1
    assert sim.received(Mti.PURCHASE_REQUEST) == 1
    assert await store.journal.pending() == []


async def test_pending_purchase_that_never_left_is_sent_when_an_advice_finds_nothing(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    # Recorded, then the process died before the 2200 was written: the advice on resuming
    # is answered 0063, so the journalled 2200 goes out after all, and the purchase is paid.
    sent_at = datetime.now(WIB).replace(microsecond=0)
    await store.journal.begin(JournalEntry(request(), "000000000042", sent_at))
    async with client_for(sim, store) as client:
        [result] = await client.wait_resumed()
        assert await client.purchase(request()) == result
    assert result.paid and not result.via_advice
    assert_token_for(result.token, result.kwh)
    assert [entry.token for entry in sim.ledger.paid()] == [result.token]
    assert (sim.received(Mti.ADVICE), sim.received(Mti.PURCHASE_REQUEST)) == (1, 1)
    assert await store.journal.pending() == []


async def test_a_2200_lost_on_the_way_is_sent_again_and_paid_once(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    sim.script.push(Fault.lost(), Mti.PURCHASE_REQUEST)
    sim.script.push(Fault.lost(), Mti.PURCHASE_REQUEST)
    async with client_for(sim, store, response_timeout=0.2) as client:
        result = await client.purchase(request())
    assert result.paid
    assert [entry.token for entry in sim.ledger.paid()] == [result.token]
    assert sim.received(Mti.PURCHASE_REQUEST) == 3


async def test_a_purchase_p2apst_never_receives_is_declined_after_the_resends(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    for _ in range(3):
        sim.script.push(Fault.lost(), Mti.PURCHASE_REQUEST)
    async with client_for(sim, store, response_timeout=0.2, resend_unreceived=2) as client:
        result = await client.purchase(request())
        again = await client.purchase(request())
    assert (result.response_code, result.token) == (ResponseCode.NO_PAYMENT, None)
    assert again == result
    assert sim.ledger.paid() == []
    assert sim.received(Mti.PURCHASE_REQUEST) == 3  # the first and two resends
    assert sim.received(Mti.ADVICE) == 3


async def test_duplicate_requests_send_one_2200(sim: P2apstSimulator, store: SqliteStore) -> None:
    async with client_for(sim, store) as client:
        first, second = await asyncio.gather(client.purchase(request()), client.purchase(request()))
        third = await client.purchase(request())
    assert first == second == third and first.paid
    assert sim.received(Mti.PURCHASE_REQUEST) == 1
    assert len(sim.ledger.paid()) == 1


async def test_already_paid_reference_gets_the_stored_token_by_advice(
    sim: P2apstSimulator, store: SqliteStore, tmp_path: Path
) -> None:
    async with client_for(sim, store) as client:
        original = await client.purchase(request())
    # Another journal (say, a restored backup) does not know the purchase: P2APST does.
    async with SqliteStore(tmp_path / "other.sqlite") as other, client_for(sim, other) as client:
        again = await client.purchase(request())
    assert again.token == original.token and again.via_advice
    assert len(sim.ledger.paid()) == 1


async def test_tokens_for_one_meter_never_share_a_tid(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    async with client_for(sim, store) as client:
        results = [await client.purchase(request(f"REF-{n}")) for n in range(3)]
    tids = {sts.decode(r.token or "", METER.decoder_key()).fields.tid for r in results}
    assert len(tids) == 3


async def test_requests_before_sign_on_are_refused(sim: P2apstSimulator) -> None:
    link = await Link.open("127.0.0.1", sim.port, Framing.LENGTH_PREFIX, 2.0)
    try:
        echo = messages.network_request("301", "000000000001", datetime.now(WIB))  # type: ignore[arg-type]
        assert (await link.request(echo, 2.0)).response_code == ResponseCode.SUCCESS
        identity = P2apstClient("x", 0, journal=None).identity  # type: ignore[arg-type]
        purchase = messages.purchase_request(identity, request(), "000000000002", datetime.now())
        answer = await link.request(purchase, 2.0)
        assert (answer.mti, answer.response_code) == ("2210", ResponseCode.SIGN_ON_NEEDED)
    finally:
        await link.close()
    assert sim.ledger.paid() == []


async def test_trailing_ff_framing(store: SqliteStore) -> None:
    settings = SimulatorSettings(framing=Framing.TRAILING_FF)
    async with P2apstSimulator(METERS, settings=settings) as sim:
        client_settings = dataclasses.replace(FAST, framing=Framing.TRAILING_FF)
        async with P2apstClient(
            "127.0.0.1", sim.port, journal=store.journal, settings=client_settings
        ) as client:
            await client.echo()
            assert (await client.purchase(request())).paid


def report(report_id: str = "RPT-1") -> TokenReport:
    return TokenReport(
        report_id=report_id,
        meter_number=METER.meter_number,
        switcher_reference="REF-0001",
        token="12345678901234567890",
        accepted=False,
        reason=TokenReason.USED,
        event_time=datetime(2024, 3, 15, 10, 31, tzinfo=WIB),
        credit_kwh=Decimal("12.5"),
    )


async def test_token_reports_are_retried_until_acknowledged(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    sim.script.push(Fault.no_answer(), Mti.REPORT_ADVICE)
    async with client_for(sim, store, advice_timeout=0.5) as client:
        await client.report_token_result(report())
        await client.report_token_result(report())  # the same report twice: stored once
        await client.drain_reports()
    assert await store.outbox.unacknowledged() == []
    [(report_id, bit48, times)] = sim.ledger.reports()
    assert (report_id, times) == ("RPT-1", 2)  # the 2620 arrived, its answer did not
    assert sim.received(Mti.REPORT_ADVICE_REPEAT) == 1
    decoded = messages.read_token_report(TOKEN_REPORT.decode(bit48))
    assert decoded == report()


async def test_unacknowledged_reports_are_sent_after_a_restart(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    await store.outbox.add(report("RPT-OLD"))
    async with client_for(sim, store) as client:
        await client.drain_reports()
    assert [r[0] for r in sim.ledger.reports()] == ["RPT-OLD"]


class RecordingOutbox:
    """The store's outbox, noting each acknowledgement call's report ids."""

    def __init__(self, store: SqliteStore) -> None:
        self.inner = store.outbox
        self.acknowledged: list[list[str]] = []

    async def add(self, report: TokenReport) -> bool:
        return await self.inner.add(report)

    async def unacknowledged(self) -> list[TokenReport]:
        return list(await self.inner.unacknowledged())

    async def acknowledge(self, report_id: str) -> None:
        await self.acknowledge_many([report_id])

    async def acknowledge_many(self, report_ids: list[str]) -> None:
        self.acknowledged.append(sorted(report_ids))
        await self.inner.acknowledge_many(report_ids)


async def test_reports_go_out_a_window_at_a_time_and_are_acknowledged_together(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    ids = [f"RPT-{n:02d}" for n in range(10)]
    for report_id in ids:
        await store.outbox.add(report(report_id))
    outbox = RecordingOutbox(store)
    settings = dataclasses.replace(FAST, report_window=4)
    async with P2apstClient(
        "127.0.0.1", sim.port, journal=store.journal, outbox=outbox, settings=settings
    ) as client:
        await client.drain_reports()
    assert sorted(r[0] for r in sim.ledger.reports()) == ids  # each exactly once
    assert outbox.acknowledged == [ids[0:4], ids[4:8], ids[8:10]]  # oldest first, 4 at once
    assert await store.outbox.unacknowledged() == []


async def test_an_unanswered_report_in_a_window_is_repeated_alone(
    sim: P2apstSimulator, store: SqliteStore
) -> None:
    ids = [f"RPT-{n:02d}" for n in range(6)]
    for report_id in ids:
        await store.outbox.add(report(report_id))
    outbox = RecordingOutbox(store)
    sim.script.push(Fault.no_answer(), Mti.REPORT_ADVICE)
    settings = dataclasses.replace(FAST, report_window=4, advice_timeout=0.5)
    async with P2apstClient(
        "127.0.0.1", sim.port, journal=store.journal, outbox=outbox, settings=settings
    ) as client:
        await client.drain_reports()
    # The three answered with it were acknowledged in the first round; the fourth was
    # repeated (2621), with the last two after it.
    assert len(outbox.acknowledged[0]) == 3
    assert sorted(i for batch in outbox.acknowledged for i in batch) == ids
    assert sim.received(Mti.REPORT_ADVICE_REPEAT) == 1
    assert await store.outbox.unacknowledged() == []


class FlakySignOn(P2apstClient):
    """The first sign-on fails with an error nobody planned for (a bug, a library's
    surprise): the supervisor must log it and connect again, not end."""

    failures = 0

    async def _sign_on(self, link: Link) -> None:
        if self.failures == 0:
            self.failures += 1
            raise RuntimeError("surprise")
        await super()._sign_on(link)


async def test_the_link_supervisor_survives_an_unexpected_error(
    sim: P2apstSimulator, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = FlakySignOn(
        "127.0.0.1", sim.port, journal=store.journal, outbox=store.outbox, settings=FAST
    )
    async with client:
        assert client.down_for() is not None  # not signed on yet
        await client.wait_connected()
        assert client.down_for() is None
        result = await client.purchase(request())
    assert result.paid
    assert client.failures == 1 and client.sign_ons == 1
    assert "link supervisor error" in caplog.text and "surprise" in caplog.text


async def test_a_link_that_never_comes_up_says_how_long_it_has_been_down(
    store: SqliteStore,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with P2apstClient("127.0.0.1", port, journal=store.journal, settings=FAST) as client:
        first = client.down_for()
        assert first is not None and first >= 0
        later = client.down_for()
        assert later is not None and later >= first
        assert not client.connected
