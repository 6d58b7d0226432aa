"""Each fault of a simulated meter, seen from the hub side of a real network."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol.frames import Ping, Pong, Reason, Telemetry
from meter_sim.meter.faults import MeterFaults
from meter_sim.meter.simulated import Fate, SimulatedMeter
from meter_sim.network import NetworkSms
from tests.meter_sim.test_simulated_meter import HUB, START, Rig, rig

__all__ = ["rig"]
pytestmark = pytest.mark.timeout(20)


async def ping(rig: Rig, meter: SimulatedMeter) -> None:
    rig.hub.send(meter.meter_number, Ping())


async def test_offline_meter_is_retried_by_the_smsc_and_holds_its_own_frames(rig: Rig) -> None:
    faults = MeterFaults(offline_until=START + timedelta(hours=1))
    meter = rig.meter(faults=faults, initial_credit_kwh=Decimal(20), reporting_interval_min=15)
    await meter.advance(START + timedelta(minutes=30))
    sent_while_offline = [s for s in meter.sent if isinstance(s.message, Telemetry)]
    assert sent_while_offline and all(s.fates == [Fate.HELD] for s in sent_while_offline)
    assert rig.hub.messages(Telemetry) == []
    await ping(rig, meter)  # refused until the meter is back; the SMSC retries every 600 s
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Pong)) == 1)
    assert rig.clock() >= START + timedelta(hours=1)
    assert rig.clock.slept.count(600.0) >= 3
    await meter.tick()  # back online: the held readings go out, then the one due now
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Telemetry)) == 3)
    assert all(s.fates == [Fate.HELD, Fate.SENT] for s in sent_while_offline)
    assert rig.hub.messages(Telemetry)[:2] == [s.message for s in sent_while_offline]


async def test_slow_meter_waits_before_answering(rig: Rig) -> None:
    meter = rig.meter(faults=MeterFaults(answer_delay_s=42.0))
    await ping(rig, meter)
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Pong)) == 1)
    assert 42.0 in rig.clock.slept
    assert rig.clock() == START + timedelta(seconds=42)


async def test_lost_frames_never_reach_the_hub(rig: Rig) -> None:
    meter = rig.meter(faults=MeterFaults(loss_rate=1.0))
    await ping(rig, meter)
    await meter.wait_for(lambda: len(meter.handled) == 1)
    assert [s.fates for s in meter.sent] == [[Fate.LOST]]
    assert rig.hub.raw == [] and meter.sent_messages() == []
    meter.faults.loss_rate = 0.0  # faults change at run time
    await ping(rig, meter)
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Pong)) == 1)


async def test_duplicated_frames_are_replays_to_the_hub(rig: Rig) -> None:
    meter = rig.meter(faults=MeterFaults(duplicate_rate=1.0))
    await ping(rig, meter)
    await rig.hub.wait_for(lambda: len(rig.hub.raw) == 2)
    assert len(rig.hub.messages(Pong)) == 1
    assert [e.reason for e in rig.hub.errors] == [Reason.REPLAYED]


async def test_corrupted_frames_fail_at_the_hub(rig: Rig) -> None:
    meter = rig.meter(faults=MeterFaults(corrupt_rate=1.0))
    for _ in range(5):
        await ping(rig, meter)
    await rig.hub.wait_for(lambda: len(rig.hub.errors) == 5)
    assert rig.hub.received == []
    assert all(Fate.CORRUPTED in s.fates for s in meter.sent)


async def test_a_wrong_key_breaks_both_directions(rig: Rig) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal(20), reporting_interval_min=15)
    meter.faults.wrong_key = True
    await ping(rig, meter)
    await meter.wait_for(lambda: len(meter.refused) == 1)
    assert meter.refused[0].reason is Reason.BAD_TAG
    await meter.advance(START + timedelta(minutes=15))
    await rig.hub.wait_for(lambda: len(rig.hub.errors) == 1)
    assert rig.hub.errors[0].reason is Reason.BAD_TAG
    meter.faults.wrong_key = False
    await ping(rig, meter)
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Pong)) == 1)


async def test_a_drifting_clock_shows_in_the_meter_time(rig: Rig) -> None:
    meter = rig.meter(faults=MeterFaults(clock_drift_s_per_day=120.0))
    await meter.tick()  # the meter starts counting at START
    rig.clock.set(START + timedelta(days=2))
    await meter.advance(rig.clock())
    await ping(rig, meter)
    await rig.hub.wait_for(lambda: len(rig.hub.messages(Pong)) == 1)
    (pong,) = rig.hub.messages(Pong)
    assert isinstance(pong, Pong)
    assert pong.meter_time - rig.clock() == timedelta(seconds=240)


async def test_sms_from_strangers_are_ignored(rig: Rig) -> None:
    meter = rig.meter()
    rig.network.submit("+6281200000009", meter.identity.msisdn, text="BELI 100rb 1234")
    await meter.wait_for(lambda: len(meter.refused) == 1)
    assert meter.refused[0].reason is None and meter.sent == []


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=160), text=st.text(max_size=160), binary=st.booleans())
async def test_arbitrary_sms_never_break_the_meter(
    rig: Rig, data: bytes, text: str, binary: bool
) -> None:
    meter = rig.meter(initial_credit_kwh=Decimal(5))
    before = meter.snapshot()
    sms = NetworkSms(1, HUB, meter.identity.msisdn, None if binary else text,
                     data if binary else None, None, START)  # fmt: skip
    assert await meter.receive_sms(sms) is True
    assert meter.snapshot() == before and meter.sent == []
    assert len(meter.refused) == 1
