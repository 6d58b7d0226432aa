"""A simulated meter on a real SmsNetwork, driven by real sealed frames from a hub Endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocol import sts
from firmware_protocol.frames import (
    Alarm,
    AlarmKind,
    BalanceQuery,
    BalanceReply,
    ConfigAck,
    ConfigStatus,
    EndpointState,
    LoadProfile,
    MeterStatus,
    Ping,
    Pong,
    ReadKind,
    ReadRequest,
    ReplayWindow,
    SetConfig,
    Telemetry,
    TokenDelivery,
    TokenOutcome,
    TokenResult,
    peek,
)
from meter_sim.clock import SimClock
from meter_sim.meter.simulated import MeterIdentity, SimulatedMeter
from meter_sim.meter.state_store import MeterSnapshot, StateStore
from meter_sim.network import NetworkProfile, NetworkSms, NetworkStatusReport, SmsNetwork
from tests.meter_sim.sim_hub import SimHub

pytestmark = pytest.mark.timeout(20)

HUB = "+6281100000000"
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
VENDING_KEY = 0xABABABABABABABAB


def identity(number: str = "14000000001", msisdn: str = "+6281900000001") -> MeterIdentity:
    return MeterIdentity(
        meter_number=number,
        msisdn=msisdn,
        hub_msisdn=HUB,
        power_va=1300,
        key_data=sts.KeyData(2, "123456", "01", 1, "600727", number),
        vending_key=VENDING_KEY,
        comms_keys={1: bytes(range(16))},
        comms_key_id=1,
    )


def token(ident: MeterIdentity, kwh: str, minutes: int = 0, rnd: int = 3) -> str:
    fields = sts.credit(0, rnd, START + timedelta(minutes=minutes), Decimal(kwh), ident.base_date)
    return sts.encode(fields, ident.decoder_key())


@dataclass
class Rig:
    clock: SimClock
    network: SmsNetwork
    hub: SimHub
    store: StateStore
    ident: MeterIdentity
    path: Path

    def meter(self, **kwargs: object) -> SimulatedMeter:
        meter = SimulatedMeter(
            self.ident,
            self.network,
            self.store,
            clock=self.clock,
            sleep=self.clock.sleep,
            **kwargs,  # type: ignore[arg-type]
        )
        meter.attach()
        return meter


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = SimClock(START)
    profile = NetworkProfile(retry_interval=600.0, max_attempts=20)
    async with SmsNetwork(profile, seed=1, clock=clock, sleep=clock.sleep) as network:
        ident = identity()
        hub = SimHub(network, HUB)
        hub.add(ident)
        path = tmp_path / "meters.sqlite"
        with StateStore(path) as store:
            yield Rig(clock, network, hub, store, ident, path)


async def deliver(rig: Rig, meter: SimulatedMeter, reference: int, tok: str) -> TokenResult:
    before = len(rig.hub.messages(TokenResult))
    rig.hub.send(meter.meter_number, TokenDelivery(reference, tok))
    await rig.hub.wait_for(lambda: len(rig.hub.messages(TokenResult)) > before)
    result = rig.hub.messages(TokenResult)[-1]
    assert isinstance(result, TokenResult)
    return result


async def test_a_token_is_credited_and_answered(rig: Rig) -> None:
    meter = rig.meter()
    result = await deliver(rig, meter, 31337, token(rig.ident, "25.6"))
    assert result.reference == 31337
    assert result.outcome is TokenOutcome.ACCEPTED
    assert result.added_kwh == Decimal("25.6") == result.credit_kwh
    assert meter.credit_kwh == Decimal("25.6")
    assert meter.supply_on


async def test_duplicates_and_resends_credit_exactly_once(rig: Rig) -> None:
    meter = rig.meter()
    tok = token(rig.ident, "10")
    frame = rig.hub.seal(meter.meter_number, TokenDelivery(7, tok), message_id=55)
    for _ in range(3):  # the network delivers the same frame three times
        rig.hub.send_frame(meter.meter_number, frame)
    await meter.wait_for(lambda: len(meter.refused) == 2)
    # The hub, having heard nothing, re-seals the delivery under a new counter.
    rig.hub.send_frame(
        meter.meter_number, rig.hub.seal(meter.meter_number, TokenDelivery(7, tok), message_id=55)
    )
    await rig.hub.wait_for(lambda: len(rig.hub.messages(TokenResult)) == 2)
    results = rig.hub.messages(TokenResult)
    assert [r.outcome for r in results if isinstance(r, TokenResult)] == [TokenOutcome.ACCEPTED] * 2
    assert [r.reason.value for r in meter.refused if r.reason] == ["replayed", "replayed"]
    assert meter.credit_kwh == Decimal(10)
    assert len(meter.credited) == 1


async def test_out_of_order_deliveries_are_both_credited(rig: Rig) -> None:
    meter = rig.meter()
    first = rig.hub.seal(meter.meter_number, TokenDelivery(1, token(rig.ident, "5", 1)))
    second = rig.hub.seal(meter.meter_number, TokenDelivery(2, token(rig.ident, "7", 2)))
    rig.hub.send_frame(meter.meter_number, second)
    rig.hub.send_frame(meter.meter_number, first, text=True)
    await rig.hub.wait_for(lambda: len(rig.hub.messages(TokenResult)) == 2)
    outcomes = {
        r.reference: r.outcome for r in rig.hub.messages(TokenResult) if isinstance(r, TokenResult)
    }
    assert outcomes == {1: TokenOutcome.ACCEPTED, 2: TokenOutcome.ACCEPTED}
    assert meter.credit_kwh == Decimal(12)
    # an answer goes back in the form of its request; the alarm in the meter's own form
    assert sorted(sms.text is not None for sms in rig.hub.raw) == [False, False, True]
    alarms = rig.hub.messages(Alarm)
    assert [a.kind for a in alarms if isinstance(a, Alarm)] == [AlarmKind.POWER_RESTORE]


async def test_used_old_and_invalid_tokens(rig: Rig) -> None:
    meter = rig.meter()
    tok = token(rig.ident, "3", 0)
    assert (await deliver(rig, meter, 1, tok)).outcome is TokenOutcome.ACCEPTED
    used = await deliver(rig, meter, 2, tok)  # same token, a new purchase reference
    assert (used.outcome, used.added_kwh, used.credit_kwh) == (
        TokenOutcome.USED,
        Decimal(0),
        Decimal(3),
    )
    other = identity("14000000002")
    invalid = await deliver(rig, meter, 3, token(other, "3", 5))
    assert invalid.outcome is TokenOutcome.INVALID_CRC
    for minute in range(10, 10 + 50):  # fill the remembered-TID list with newer tokens
        meter._decoder.accept(token(rig.ident, "0.1", minute))
    old = await deliver(rig, meter, 4, token(rig.ident, "3", 1))
    assert old.outcome is TokenOutcome.OLD
    assert meter.credit_kwh == Decimal(3) + Decimal("5.0")


async def test_requests_are_answered(rig: Rig) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal("40"))
    await meter.advance(START + timedelta(hours=3))
    hub_time = START + timedelta(hours=3, minutes=2)
    rig.hub.send(meter.meter_number, SetConfig(60, Decimal("12.5"), hub_time))
    rig.hub.send(meter.meter_number, BalanceQuery())
    rig.hub.send(meter.meter_number, Ping())
    rig.hub.send(
        meter.meter_number, ReadRequest(ReadKind.INSTANT, datetime(1970, 1, 1, tzinfo=UTC))
    )
    rig.hub.send(meter.meter_number, ReadRequest(ReadKind.LOAD_PROFILE, START))
    await rig.hub.wait_for(lambda: len(rig.hub.received) == 5)
    ack, balance, pong, reading, profile = rig.hub.messages()
    assert isinstance(ack, ConfigAck)
    assert (ack.status, ack.reporting_interval_min, ack.low_credit_threshold_kwh) == (
        ConfigStatus.APPLIED,
        60,
        Decimal("12.5"),
    )
    assert ack.clock == hub_time  # the meter set its clock to the hub's
    assert (meter.reporting_interval_min, meter.low_credit_threshold_kwh) == (60, Decimal("12.5"))
    assert isinstance(balance, BalanceReply)
    assert balance.request_id == 102  # the hub's message ids run 101, 102, ...
    assert balance.credit_kwh == meter.credit_kwh.quantize(Decimal("0.01"), "ROUND_DOWN")
    assert Decimal(0) < balance.energy_kwh < Decimal(40)
    assert balance.credit_kwh + balance.energy_kwh in (Decimal("39.99"), Decimal(40))
    assert isinstance(pong, Pong) and pong.meter_time == hub_time
    assert isinstance(reading, Telemetry) and reading.request_id > 0
    assert reading.status == MeterStatus(0)
    assert isinstance(profile, LoadProfile)
    assert profile.interval_min == 60 and len(profile.energy_kwh) == 3
    assert list(profile.energy_kwh) == sorted(profile.energy_kwh)


async def test_a_long_load_profile_comes_in_segments(rig: Rig) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal(80))
    await meter.advance(START + timedelta(days=2))
    rig.hub.send(meter.meter_number, ReadRequest(ReadKind.LOAD_PROFILE, START))
    await rig.hub.wait_for(lambda: len(rig.hub.messages(LoadProfile)) == 1)
    (received,) = [r for r in rig.hub.received if isinstance(r.message, LoadProfile)]
    assert len(received.headers) == 2  # two frames, reassembled by the hub's Endpoint
    profile = received.message
    assert isinstance(profile, LoadProfile)
    assert profile.start == START + timedelta(hours=1) and len(profile.energy_kwh) == 48
    assert profile.energy_kwh[-1] == meter.energy_kwh.quantize(Decimal("0.01"), "ROUND_DOWN")


async def test_scheduled_telemetry_follows_the_interval_over_a_day(rig: Rig) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal("100"), reporting_interval_min=60)
    await meter.advance(START + timedelta(days=1))
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Telemetry)) == 24)
    readings = [m for m in rig.hub.messages(Telemetry) if isinstance(m, Telemetry)]
    assert [r.read_at for r in readings] == [START + timedelta(hours=h) for h in range(1, 25)]
    energies = [r.energy_kwh for r in readings]
    assert energies == sorted(energies) and energies[0] > 0
    assert all(r.request_id == 0 for r in readings)
    # a 1300 VA household uses about 6 kWh a day
    assert Decimal(3) < energies[-1] < Decimal(10)
    assert readings[-1].credit_kwh + readings[-1].energy_kwh <= Decimal(100)


async def test_a_reporting_phase_spreads_readings_off_the_boundary(rig: Rig) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal("100"), reporting_interval_min=60)
    await meter.tick(START)
    meter.spread_reports(125.0)
    await meter.advance(START + timedelta(hours=3))
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Telemetry)) == 3)
    readings = [m for m in rig.hub.messages(Telemetry) if isinstance(m, Telemetry)]
    phase = timedelta(seconds=125)
    assert [r.read_at for r in readings] == [START + phase + timedelta(hours=h) for h in range(3)]


async def test_supply_is_cut_at_zero_and_restored_by_a_token(rig: Rig) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal("3"), low_credit_threshold_kwh=Decimal("2"))
    await meter.advance(START + timedelta(days=1))
    assert meter.credit_kwh == 0 and not meter.supply_on
    energy = meter.energy_kwh
    assert energy == Decimal(3)
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Alarm)) == 2)
    low, cut = rig.hub.messages(Alarm)
    assert isinstance(low, Alarm) and isinstance(cut, Alarm)
    assert (low.kind, cut.kind) == (AlarmKind.LOW_CREDIT, AlarmKind.NO_CREDIT)
    assert MeterStatus.LOW_CREDIT in low.status
    assert cut.status == MeterStatus.RELAY_OPEN | MeterStatus.NO_CREDIT
    await meter.advance(START + timedelta(days=2))
    assert meter.energy_kwh == energy  # nothing flows with the relay open
    result = await deliver(rig, meter, 9, token(rig.ident, "20", 60 * 30))
    assert result.outcome is TokenOutcome.ACCEPTED and meter.supply_on
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Alarm)) == 3)
    restore = rig.hub.messages(Alarm)[-1]
    assert isinstance(restore, Alarm) and restore.kind is AlarmKind.POWER_RESTORE
    assert MeterStatus.RELAY_OPEN not in restore.status
    await meter.advance(START + timedelta(days=2, hours=6))
    assert meter.energy_kwh > energy


async def test_mains_and_tamper_events_raise_alarms(rig: Rig) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal("50"))
    await meter.tick()
    await meter.mains_fail()
    await meter.advance(START + timedelta(hours=5))
    assert meter.energy_kwh == 0
    await meter.mains_restore()
    await meter.tamper_event(AlarmKind.COVER_OPEN)
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Alarm)) == 3)
    kinds = [a.kind for a in rig.hub.messages(Alarm) if isinstance(a, Alarm)]
    assert kinds == [AlarmKind.POWER_FAIL, AlarmKind.POWER_RESTORE, AlarmKind.COVER_OPEN]
    assert MeterStatus.TAMPER in meter.status()
    clear = sts.encode(
        sts.management(5, 1, START + timedelta(minutes=3), 0, rig.ident.base_date),
        rig.ident.decoder_key(),
    )
    result = await deliver(rig, meter, 77, clear)
    assert result.outcome is TokenOutcome.ACCEPTED and result.added_kwh == 0
    assert not meter.tamper


async def test_state_survives_a_restart(rig: Rig) -> None:
    meter = rig.meter()
    tok = token(rig.ident, "15")
    await deliver(rig, meter, 1, tok)
    counter = meter.counter
    used_counters = [s.counter for s in meter.sent]
    meter.detach()
    # "restart": a new process with a new store connection on the same file
    with StateStore(rig.path) as store:
        again = SimulatedMeter(
            rig.ident, rig.network, store, clock=rig.clock, sleep=rig.clock.sleep
        )
        again.attach()
        assert again.credit_kwh == Decimal(15) and again.counter == counter
        assert [r.reference for r in again.credited] == [1]
        used = await deliver(rig, again, 2, tok)
        assert used.outcome is TokenOutcome.USED
        resent = await deliver(rig, again, 1, tok)  # the same purchase again: same answer
        assert (resent.outcome, resent.added_kwh) == (TokenOutcome.ACCEPTED, Decimal(15))
        assert again.credit_kwh == Decimal(15)
        assert min(s.counter for s in again.sent) > max(used_counters)
        # the replay window survived too: an old frame from before the restart is refused
        assert not rig.hub.errors


async def test_a_token_under_a_retired_key_revision_is_key_expired(rig: Rig) -> None:
    old = rig.ident.key_data
    new = sts.KeyData(old.key_type, old.supply_group_code, old.tariff_index, 2, old.iin, old.drn)
    rig.ident = MeterIdentity(
        **{**{f: getattr(rig.ident, f) for f in rig.ident.__dataclass_fields__},
           "key_data": new, "expired_key_data": (old,)}
    )  # fmt: skip
    meter = rig.meter()
    stale = sts.encode(
        sts.credit(0, 1, START, Decimal(5), rig.ident.base_date),
        sts.derive_decoder_key(VENDING_KEY, old),
    )
    assert (await deliver(rig, meter, 1, stale)).outcome is TokenOutcome.KEY_EXPIRED
    assert (await deliver(rig, meter, 2, token(rig.ident, "5", 1))).outcome is TokenOutcome.ACCEPTED
    assert meter.credit_kwh == Decimal(5)


class CrashProbe:
    """Stands at the hub's number and reads the meter's saved state the instant each frame
    arrives, through its own database connection: what a crash right then would leave."""

    def __init__(self, rig: Rig, meter_number: str) -> None:
        self.rig = rig
        self.meter_number = meter_number
        self.seen: list[tuple[int, int, tuple[int, ...]]] = []  # frame counter, saved counter, TIDs

    async def receive_sms(self, sms: NetworkSms) -> bool:
        assert sms.data is not None
        header = peek(sms.data)
        with StateStore(self.rig.path) as store:
            saved = store.load(self.meter_number)
        assert saved is not None
        self.seen.append((header.counter, saved.endpoint.next_counter, saved.tids))
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None


async def test_state_is_saved_before_the_answer_leaves(rig: Rig) -> None:
    meter = rig.meter()
    hub_endpoint = rig.hub.endpoints[meter.meter_number]
    (frame,) = hub_endpoint.seal(TokenDelivery(1, token(rig.ident, "4")), message_id=1)
    probe = CrashProbe(rig, meter.meter_number)
    rig.network.attach(HUB, probe)  # replaces the test hub
    rig.network.submit(HUB, meter.identity.msisdn, data=frame)
    await meter.wait_for(lambda: len(meter.handled) == 1)
    await meter.wait_for(lambda: len(probe.seen) == 2)  # TOKEN_RESULT, then POWER_RESTORE
    tid = meter.credited[0].tid
    for counter, saved_next, tids in probe.seen:
        assert saved_next > counter  # the counter in flight is already used up on disk
        assert tid in tids  # and so is the credited token


async def test_run_ticks_in_real_time_mode(rig: Rig) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal(30), reporting_interval_min=60)
    meter.start(tick_s=600.0)  # with the simulated sleep, ten minutes pass per tick
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Telemetry)) >= 3)
    await meter.stop()
    readings = [m for m in rig.hub.messages(Telemetry) if isinstance(m, Telemetry)]
    assert [r.read_at for r in readings[:3]] == [START + timedelta(hours=h) for h in (1, 2, 3)]


@given(
    credit=st.decimals(0, 99999, places=4),
    tids=st.lists(st.integers(0, (1 << 24) - 1), max_size=50, unique=True),
    counter=st.integers(0, 1 << 32),
    offset=st.floats(-1e6, 1e6, allow_nan=False),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
def test_snapshots_survive_the_store(
    credit: Decimal,
    tids: list[int],
    counter: int,
    offset: float,
    flags: tuple[bool, bool, bool, bool],
) -> None:
    window = ReplayWindow()
    if counter < 1 << 32:
        window.accept(counter)
    snapshot = MeterSnapshot(
        meter_number="14000000001",
        credit_kwh=credit,
        energy_kwh=credit * 2,
        tids=tuple(sorted(tids)),
        tamper=flags[0],
        relay_closed=flags[1],
        mains_on=flags[2],
        endpoint=EndpointState(1, counter, window.to_bytes()),
        next_message_id=counter or 1,
        reporting_interval_min=15,
        low_credit_threshold_kwh=Decimal("2.5"),
        clock_offset_s=offset,
        low_credit_alarmed=flags[3],
        last_tick=START if flags[0] else None,
        next_telemetry_at=START + timedelta(hours=1),
    )
    with StateStore(":memory:") as store:
        store.save(snapshot)
        assert store.load("14000000001") == snapshot
        assert store.load("14000000002") is None
